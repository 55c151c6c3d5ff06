"""Child-process entry point: a GGUF file to OpenVINO IR through OpenVINO GenAI's own GGUF reader.

Run as `python -m hub.convert_gguf SOURCE OUT` by hub/convert.py. `LLMPipeline` builds an OpenVINO
graph from a GGUF file (keeping its quantized weights) and, with `enable_save_ov_model`, saves that
graph and the tokenizer it read from the GGUF next to the file it loaded. Loading a link to the
source placed in OUT therefore leaves exactly the model that serving the GGUF runs, as IR, in OUT.
The link is removed afterwards. (The other route, GGUF -> Hugging Face checkpoint -> IR, broke the
tokenizer of the default model.)
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Load the GGUF once with saving on; exit status 0 when the IR and tokenizer are written."""
    parser = argparse.ArgumentParser(prog="python -m hub.convert_gguf")
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)

    import openvino_genai

    link = args.out / "source.gguf"
    link.symlink_to(args.source.resolve())
    try:
        print(f"reading GGUF {args.source}", flush=True)
        openvino_genai.LLMPipeline(str(link), "CPU", enable_save_ov_model=True)
    finally:
        link.unlink()
    print(f"saved {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
