"""Child-process entry point: a TensorFlow SavedModel to OpenVINO IR, plus its tokenizer.

Run as `python -m hub.convert_tf SOURCE OUT PRECISION TASK [--sym]` by hub/convert.py. OpenVINO's
TensorFlow frontend reads the SavedModel itself; nncf compresses weights for int8/int4; the
Hugging Face tokenizer files beside saved_model.pb become openvino_tokenizer/detokenizer.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "config.json")


def main(argv: list[str] | None = None) -> int:
    """Convert, compress and save; exit status 0 on success."""
    parser = argparse.ArgumentParser(prog="python -m hub.convert_tf")
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("precision", choices=("fp32", "fp16", "int8", "int4"))
    parser.add_argument("task", choices=("text-generation", "embeddings"))
    parser.add_argument("--sym", action="store_true")
    args = parser.parse_args(argv)

    import openvino as ov

    print(f"reading SavedModel {args.source}", flush=True)
    model = ov.convert_model(str(args.source))
    if args.precision in ("int8", "int4"):
        import nncf

        mode = {
            ("int8", False): nncf.CompressWeightsMode.INT8_ASYM,
            ("int8", True): nncf.CompressWeightsMode.INT8_SYM,
            ("int4", False): nncf.CompressWeightsMode.INT4_ASYM,
            ("int4", True): nncf.CompressWeightsMode.INT4_SYM,
        }[(args.precision, args.sym)]
        print(f"compressing weights to {mode.value}", flush=True)
        model = nncf.compress_weights(model, mode=mode)
    ov.save_model(model, args.out / "openvino_model.xml", compress_to_fp16=args.precision == "fp16")
    print("converting tokenizer", flush=True)
    from openvino_tokenizers import convert_tokenizer
    from transformers import AutoTokenizer

    hf_tokenizer = AutoTokenizer.from_pretrained(args.source)
    with_detokenizer = args.task == "text-generation"
    converted = convert_tokenizer(hf_tokenizer, with_detokenizer=with_detokenizer)
    tokenizer, detokenizer = converted if with_detokenizer else (converted, None)
    ov.save_model(tokenizer, args.out / "openvino_tokenizer.xml")
    if detokenizer is not None:
        ov.save_model(detokenizer, args.out / "openvino_detokenizer.xml")
    for name in _TOKENIZER_FILES:
        if (args.source / name).is_file():
            shutil.copy2(args.source / name, args.out / name)
    print(f"saved {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
