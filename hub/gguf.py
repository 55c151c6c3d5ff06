"""Read the metadata block of a GGUF file without touching its tensors.

The `gguf` package parses every tensor header up front (seconds for a small model); serving only
needs a few keys at start-up, so this reads the key/value section and stops.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

_SCALARS: dict[int, str] = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
MetadataValue = int | float | bool | str | list["MetadataValue"]


class GGUFError(ValueError):
    """The file is not a GGUF file this reader understands."""


def _read(f: BinaryIO, fmt: str) -> tuple[object, ...]:
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise GGUFError("unexpected end of file in GGUF metadata")
    return struct.unpack(fmt, data)


def _read_string(f: BinaryIO) -> str:
    (length,) = _read(f, "<Q")
    assert isinstance(length, int)
    data = f.read(length)
    if len(data) != length:
        raise GGUFError("unexpected end of file in GGUF string")
    return data.decode("utf-8", errors="replace")


def _read_value(f: BinaryIO, value_type: int) -> MetadataValue:
    if value_type in _SCALARS:
        (value,) = _read(f, _SCALARS[value_type])
        assert isinstance(value, int | float | bool)
        return value
    if value_type == _STRING:
        return _read_string(f)
    if value_type == _ARRAY:
        item_type, count = _read(f, "<IQ")
        assert isinstance(item_type, int) and isinstance(count, int)
        return [_read_value(f, item_type) for _ in range(count)]
    raise GGUFError(f"unknown GGUF value type {value_type}")


def read_metadata(path: str | Path) -> dict[str, MetadataValue]:
    """Return the key/value metadata of a GGUF file (architecture, context length, ...)."""
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise GGUFError(f"{path} is not a GGUF file (bad magic)")
        version, _tensor_count, kv_count = _read(f, "<IQQ")
        if version not in (2, 3):
            raise GGUFError(f"{path}: unsupported GGUF version {version}")
        assert isinstance(kv_count, int)
        metadata: dict[str, MetadataValue] = {}
        for _ in range(kv_count):
            key = _read_string(f)
            (value_type,) = _read(f, "<I")
            assert isinstance(value_type, int)
            metadata[key] = _read_value(f, value_type)
        return metadata


def context_length(metadata: dict[str, MetadataValue]) -> int | None:
    """The trained context length recorded in GGUF metadata, if any."""
    arch = metadata.get("general.architecture")
    value = metadata.get(f"{arch}.context_length")
    return value if isinstance(value, int) else None
