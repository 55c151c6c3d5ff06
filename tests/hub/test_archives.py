"""Uploaded archives are unpacked within a budget: bombs, escapes, links and too many entries stop
with an ArchiveError and leave nothing behind."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from hub.archives import ArchiveError, ArchiveLimits, unpack


def _zip_of(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def test_a_zip_bomb_stops_at_the_budget(tmp_path: Path) -> None:
    """200 MB of zeros in a ~200 KB zip: refused after at most 20x max(archive, 1 MiB) written."""
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as z, z.open("model/weights.bin", "w") as f:
        chunk = bytes(1024 * 1024)
        for _ in range(200):
            f.write(chunk)
    assert archive.stat().st_size < 1024 * 1024
    with pytest.raises(ArchiveError, match="expands past"):
        unpack(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_tar_gz_bomb_stops_at_the_absolute_cap(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.tar.gz"
    with tarfile.open(archive, "w:gz") as t:
        info = tarfile.TarInfo("weights.bin")
        info.size = 50 * 1024 * 1024
        t.addfile(info, io.BytesIO(bytes(info.size)))
    with pytest.raises(ArchiveError, match="expands past 10000000 bytes"):
        unpack(archive, tmp_path / "out", ArchiveLimits(max_bytes=10_000_000, max_ratio=1e9))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["../escape.gguf", "/etc/evil", "a/../../b", "..\\win.gguf"])
def test_entries_outside_the_archive_are_refused(tmp_path: Path, name: str) -> None:
    archive = _zip_of(tmp_path / "evil.zip", {name: b"GGUF"})
    with pytest.raises(ArchiveError, match="unsafe archive entry"):
        unpack(archive, tmp_path / "out")
    assert not (tmp_path / "escape.gguf").exists() and not (tmp_path / "out").exists()


def test_links_and_too_many_entries_are_refused(tmp_path: Path) -> None:
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as z:
        info = zipfile.ZipInfo("model/link")
        info.external_attr = 0o120777 << 16
        z.writestr(info, "/etc/passwd")
    with pytest.raises(ArchiveError, match="is a link"):
        unpack(archive, tmp_path / "out")
    many = _zip_of(tmp_path / "many.zip", {f"f{i}": b"" for i in range(20)})
    with pytest.raises(ArchiveError, match="more than 10 entries"):
        unpack(many, tmp_path / "out2", ArchiveLimits(max_entries=10))


def test_a_normal_archive_unpacks_to_its_folder(tmp_path: Path) -> None:
    archive = _zip_of(tmp_path / "ok.zip", {"model/config.json": b"{}", "model/weights.bin": b"x" * 1000})
    root = unpack(archive, tmp_path / "out")
    assert root == tmp_path / "out" / "model"
    assert (root / "weights.bin").read_bytes() == b"x" * 1000
    with pytest.raises(ArchiveError, match="cannot be read"):
        unpack(_write(tmp_path / "junk.zip", b"PK\x03\x04junk"), tmp_path / "out3")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
