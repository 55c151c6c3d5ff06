"""Read the metadata block of a GGUF file without touching its tensors.

The `gguf` package parses every tensor header up front (seconds for a small model); serving only
needs a few keys at start-up, so this reads the key/value section and stops.

A GGUF file is untrusted input (an upload, a download): every count and length in it is checked
against what is left of the file and against `GGUFLimits` before anything is read or allocated, so a
malformed file is a `GGUFError` naming the problem, never a traceback, a hang or a huge allocation.
With `scalars_only`, arrays (the tokenizer's vocabulary, merges, scores) are skipped rather than
built: what listing models and sizing caches need costs a fraction of a full read.
"""

from __future__ import annotations

import functools
import mmap
import struct
from collections.abc import Collection
from pathlib import Path

import msgspec

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


class GGUFLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Bounds on what a GGUF header may declare; beyond them the file is refused as malformed.

    Real models stay far inside: the largest vocabularies have ~262k tokens (an array each for
    tokens, scores and types; merges about as many), chat templates are tens of KB."""

    max_kv_count: int = 65_536
    max_string_bytes: int = 16 * 1024 * 1024
    max_array_items: int = 4 * 1024 * 1024
    max_array_depth: int = 2


class _Reader:
    """A bounded reader over a file's bytes (mapped, not read): offsets instead of file calls, so
    skipping the ~49,000 merges of a vocabulary is an addition each, not a seek."""

    def __init__(self, data: mmap.mmap, limits: GGUFLimits, scalars_only: bool) -> None:
        self.data, self.size, self.limits, self.scalars_only = data, len(data), limits, scalars_only
        self.pos = 0
        # Whether the array being read is one the caller asked for (`read_metadata(arrays=...)`).
        self.keep_array = True

    def left(self) -> int:
        return self.size - self.pos

    def read(self, fmt: str) -> tuple[object, ...]:
        unpacker = _struct(fmt)
        if unpacker.size > self.left():
            raise GGUFError("unexpected end of file in GGUF metadata")
        values = unpacker.unpack_from(self.data, self.pos)
        self.pos += unpacker.size
        return values

    def _length(self) -> int:
        if self.left() < 8:
            raise GGUFError("unexpected end of file in GGUF metadata")
        (length,) = _U64.unpack_from(self.data, self.pos)
        self.pos += 8
        if length > self.left():
            raise GGUFError(f"unexpected end of file: a metadata string declares {length} bytes, past the end")
        return int(length)

    def string(self) -> str:
        length = self._length()
        if length > self.limits.max_string_bytes:
            raise GGUFError(f"a metadata string declares {length} bytes (limit {self.limits.max_string_bytes})")
        text = self.data[self.pos : self.pos + length].decode("utf-8", errors="replace")
        self.pos += length
        return text

    def value(self, value_type: int, depth: int = 0) -> MetadataValue | None:
        if value_type in _SCALARS:
            (value,) = self.read(_SCALARS[value_type])
            assert isinstance(value, int | float | bool)
            return value
        if value_type == _STRING:
            return self.string()
        if value_type != _ARRAY:
            raise GGUFError(f"unknown GGUF value type {value_type}")
        if depth >= self.limits.max_array_depth:
            raise GGUFError(f"arrays nested deeper than {self.limits.max_array_depth}")
        item_type, count = self.read("<IQ")
        assert isinstance(item_type, int) and isinstance(count, int)
        if count > self.limits.max_array_items:
            raise GGUFError(f"a metadata array declares {count} items (limit {self.limits.max_array_items})")
        item_size = _struct(_SCALARS[item_type]).size if item_type in _SCALARS else 8
        if count * item_size > self.left():
            raise GGUFError(f"unexpected end of file: a metadata array declares {count} items, past the end")
        if self.scalars_only or (depth == 0 and not self.keep_array):
            self._skip_array(item_type, count, depth)
            return None
        if item_type == _STRING:
            return self._strings(count)
        return [self._item(item_type, depth) for _ in range(count)]

    def _item(self, item_type: int, depth: int) -> MetadataValue:
        item = self.value(item_type, depth + 1)
        assert item is not None
        return item

    def _strings(self, count: int, keep: bool = True) -> list[MetadataValue]:
        """`count` strings from here, decoded (`keep`) or only stepped over. One tight loop with
        locals, the same checks as `string`: a vocabulary's ~49,000 tokens are read on every
        start, by the server and the model worker each (measured: 0.12 s through `string`)."""
        data, pos, size, limit, unpack = self.data, self.pos, self.size, self.limits.max_string_bytes, _U64.unpack_from
        strings: list[MetadataValue] = []
        for _ in range(count):
            if size - pos < 8:
                raise GGUFError("unexpected end of file in GGUF metadata")
            (length,) = unpack(data, pos)
            pos += 8
            if length > size - pos:
                raise GGUFError(f"unexpected end of file: a metadata string declares {length} bytes, past the end")
            if length > limit:
                raise GGUFError(f"a metadata string declares {length} bytes (limit {limit})")
            if keep:
                strings.append(data[pos : pos + length].decode("utf-8", errors="replace"))
            pos += length
        self.pos = pos
        return strings

    def _skip_array(self, item_type: int, count: int, depth: int) -> None:
        if item_type in _SCALARS:
            self.pos += count * _struct(_SCALARS[item_type]).size
        elif item_type == _STRING:
            self._strings(count, keep=False)
        else:
            for _ in range(count):
                self.value(item_type, depth + 1)


@functools.cache
def _struct(fmt: str) -> struct.Struct:
    return struct.Struct(fmt)


# A string's length, read directly rather than through `_Reader.read`: the loop over a vocabulary's
# ~100,000 strings is the hot path.
_U64 = struct.Struct("<Q")


def read_metadata(
    path: str | Path,
    limits: GGUFLimits | None = None,
    *,
    scalars_only: bool = False,
    arrays: Collection[str] | None = None,
) -> dict[str, MetadataValue]:
    """Return the key/value metadata of a GGUF file (architecture, context length, ...); with
    `scalars_only`, array values are skipped (absent from the result); with `arrays`, only the
    arrays of those keys are read (measured: the default model's merges and token types are ~2/3
    of its 147,000 array items, parsed in Python on every start)."""
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise GGUFError(f"{path} is not a GGUF file (bad magic)")
        # Mapped read-only: only the pages of the metadata block are ever read from disk.
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _read_metadata(path, _Reader(data, limits or GGUFLimits(), scalars_only), arrays)


def _read_metadata(path: str | Path, reader: _Reader, arrays: Collection[str] | None) -> dict[str, MetadataValue]:
    reader.pos = 4
    version, _tensor_count, kv_count = reader.read("<IQQ")
    if version not in (2, 3):
        raise GGUFError(f"{path}: unsupported GGUF version {version}")
    assert isinstance(kv_count, int)
    if kv_count > reader.limits.max_kv_count:
        raise GGUFError(f"{path} declares {kv_count} metadata keys (limit {reader.limits.max_kv_count})")
    metadata: dict[str, MetadataValue] = {}
    for _ in range(kv_count):
        key = reader.string()
        (value_type,) = reader.read("<I")
        assert isinstance(value_type, int)
        reader.keep_array = arrays is None or key in arrays
        value = reader.value(value_type)
        if value is not None:
            metadata[key] = value
    return metadata


def context_length(metadata: dict[str, MetadataValue]) -> int | None:
    """The trained context length recorded in GGUF metadata, if any."""
    arch = metadata.get("general.architecture")
    value = metadata.get(f"{arch}.context_length")
    return value if isinstance(value, int) else None
