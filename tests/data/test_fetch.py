import hashlib
import io
import tarfile
import zipfile

import pytest

from graphlearn.data.fetch import Source, fetch, sha256_of, verify_files
from graphlearn.errors import ChecksumError, FetchError


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


TRAIN = b"a\tr\tb\n"
TEST = b"b\tr\ta\n"


def _zip(tmp_path):
    path = tmp_path / "kg.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("kg/train.txt", TRAIN)
        archive.writestr("kg/test.txt", TEST)
        archive.writestr("kg/README", b"unused")
    return path


def test_zip_source_extracts_only_members_and_verifies(tmp_path):
    archive = _zip(tmp_path)
    blob = archive.read_bytes()
    source = Source("url", archive.as_uri(), {"kg/train.txt": "train.txt"},
                    archive_md5=hashlib.md5(blob).hexdigest())
    out = tmp_path / "out"
    fetch("toy", out, [source], {"train.txt": _sha(TRAIN)}, log=lambda _: None)
    assert sorted(p.name for p in out.iterdir()) == ["train.txt"]
    assert (out / "train.txt").read_bytes() == TRAIN


def test_folder_member_maps_a_prefix(tmp_path):
    source = Source("url", _zip(tmp_path).as_uri(), {"kg/": "data/"})
    out = tmp_path / "out"
    fetch("toy", out, [source], {"data/train.txt": _sha(TRAIN), "data/test.txt": None},
          log=lambda _: None)
    assert (out / "data" / "README").read_bytes() == b"unused"


def test_tar_source_tolerates_dot_slash(tmp_path):
    path = tmp_path / "kg.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("./train.txt")
        info.size = len(TRAIN)
        archive.addfile(info, io.BytesIO(TRAIN))
    out = tmp_path / "out"
    fetch("toy", out, [Source("url", path.as_uri(), {"train.txt": "train.txt"})],
          {"train.txt": _sha(TRAIN)}, log=lambda _: None)
    assert sha256_of(out / "train.txt") == _sha(TRAIN)


def test_base_url_source_fetches_each_member(tmp_path):
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "train.txt").write_bytes(TRAIN)
    (remote / "test.txt").write_bytes(TEST)
    out = tmp_path / "out"
    fetch("toy", out, [Source("url", remote.as_uri() + "/", {"train.txt": "train.txt",
                                                             "test.txt": "test.txt"})],
          {"train.txt": _sha(TRAIN), "test.txt": _sha(TEST)}, log=lambda _: None)
    assert (out / "test.txt").read_bytes() == TEST


def test_checksum_mismatch_falls_through_to_next_source_and_keeps_nothing(tmp_path):
    archive = _zip(tmp_path)
    bad = Source("url", archive.as_uri(), {"kg/test.txt": "train.txt"})  # wrong content
    good = Source("url", archive.as_uri(), {"kg/train.txt": "train.txt"})
    out = tmp_path / "out"
    lines = []
    fetch("toy", out, [bad, good], {"train.txt": _sha(TRAIN)}, log=lines.append)
    assert (out / "train.txt").read_bytes() == TRAIN
    assert len([line for line in lines if line.startswith("fetching")]) == 2


def test_every_source_failing_names_them_all_and_writes_nothing(tmp_path):
    archive = _zip(tmp_path)
    out = tmp_path / "out"
    sources = [Source("url", (tmp_path / "missing.zip").as_uri(), {"x": "x"}),
               Source("url", archive.as_uri(), {"kg/test.txt": "train.txt"})]
    with pytest.raises(FetchError) as info:
        fetch("toy", out, sources, {"train.txt": _sha(TRAIN)}, log=lambda _: None)
    message = str(info.value)
    assert "missing.zip" in message and "kg.zip" in message and "SHA-256 mismatch" in message
    assert "\n" not in message
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".toy-")] == []


def test_archive_checksum_is_checked(tmp_path):
    source = Source("url", _zip(tmp_path).as_uri(), {"kg/train.txt": "train.txt"},
                    archive_md5="0" * 32)
    with pytest.raises(FetchError, match="MD5"):
        fetch("toy", tmp_path / "out", [source], {"train.txt": None}, log=lambda _: None)


def test_verify_files_names_file_and_both_hashes(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"x")
    with pytest.raises(ChecksumError) as info:
        verify_files(tmp_path, {"a.txt": "f" * 64})
    assert "a.txt" in str(info.value) and "f" * 64 in str(info.value)
    assert _sha(b"x") in str(info.value)


def test_archive_members_cannot_escape_the_folder(tmp_path):
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("kg/train.txt", TRAIN)
    with pytest.raises(FetchError, match="outside"):
        fetch("toy", tmp_path / "out", [Source("url", path.as_uri(), {"kg/train.txt": "../x"})],
              {"../x": None}, log=lambda _: None)
