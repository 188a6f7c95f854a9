"""Fetching dataset files from their sources, with checksums.

A dataset card (see :mod:`graphlearn.data.registry`) lists its files with their
SHA-256 and one or more sources, tried in order:

* ``url``: the official download (a plain file, a ``.zip`` or a ``.tar.gz``);
  an archive may carry its own published checksum (``md5`` or ``sha256``), as
  GroupLens publishes MD5 sums for the MovieLens archives. A URL ending in ``/``
  is a base: each member is downloaded from ``base + member``;
* ``pypi_wheel``: a PyPI wheel that ships the data files (MovieLens-100K inside
  ``recbole==1.2.1``, Nations/Kinships/UMLS inside ``pykeen==1.11.1``). Only that
  wheel is downloaded (``pip download --no-deps``) and only the data files are
  extracted from it; no code of the package is installed or run.

Every file whose card records a SHA-256 is verified after it is fetched; a
mismatch rejects that source and the next one is tried. Files are written to a
temporary folder and moved into place only when the whole source succeeded, so
a failed fetch never leaves half a dataset behind. Nothing is fetched at import.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from graphlearn.errors import ChecksumError, FetchError

#: Seconds before a download attempt gives up.
TIMEOUT = 30


@dataclass(frozen=True)
class Source:
    """One place a dataset's files can come from.

    Args:
        kind: ``"url"`` or ``"pypi_wheel"``.
        location: the URL, or the pip requirement (``"recbole==1.2.1"``).
        members: archive member -> file name in the dataset folder. A member
            ending in ``/`` maps a whole folder of the archive (prefix -> prefix).
            For a base URL, member paths are appended to it.
        archive_sha256 / archive_md5: published checksum of the downloaded archive.
        files: the files this source provides (name -> SHA-256 or ``None``), when
            they differ from the card's canonical files (e.g. GroupLens' ``u.data``
            instead of RecBole's ``ml-100k.inter``).
    """

    kind: str
    location: str
    members: Mapping[str, str] = field(default_factory=dict)
    archive_sha256: str | None = None
    archive_md5: str | None = None
    files: Mapping[str, str | None] | None = None

    def describe(self) -> str:
        return f"{self.kind} {self.location}"


def sha256_of(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_files(folder: Path, checksums: Mapping[str, str | None]) -> list[str]:
    """Check every file with a recorded SHA-256; return the names that have none.

    Raises:
        ChecksumError: naming the file and both hashes, on the first mismatch.
        FileNotFoundError: when a listed file is missing.
    """
    unverified = []
    for name, expected in checksums.items():
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing")
        if expected is None:
            unverified.append(name)
            continue
        actual = sha256_of(path)
        if actual != expected:
            raise ChecksumError(path, expected, actual)
    return unverified


def _download(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "graphlearn"})
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        return response.read()


def _pip_download_wheel(requirement: str, workdir: Path) -> Path:
    """Download one wheel without its dependencies; return its path."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "-q", "-d", str(workdir), requirement,
    ]
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=600)
    wheels = sorted(workdir.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise OSError(f"pip download {requirement} failed: {detail[-1] if detail else 'no wheel'}")
    return wheels[0]


def _check_archive(blob: bytes, source: Source, label: str) -> None:
    if source.archive_sha256 is not None:
        actual = hashlib.sha256(blob).hexdigest()
        if actual != source.archive_sha256:
            raise ChecksumError(label, source.archive_sha256, actual)
    if source.archive_md5 is not None:
        actual = hashlib.md5(blob, usedforsecurity=False).hexdigest()
        if actual != source.archive_md5:
            raise ChecksumError(label + " (MD5)", source.archive_md5, actual)


def _select(names: list[str], members: Mapping[str, str], archive: str) -> dict[str, str]:
    """Map archive member names to target paths (``./`` prefixes ignored)."""
    by_clean = {n.removeprefix("./"): n for n in names if not n.endswith("/")}
    chosen = {}
    for member, target in members.items():
        if member.endswith("/"):
            inside = [n for n in by_clean if n.startswith(member)]
            if not inside:
                raise OSError(f"{archive} has no folder {member!r}")
            for clean in inside:
                chosen[by_clean[clean]] = target + clean[len(member):]
        elif member in by_clean:
            chosen[by_clean[member]] = target
        else:
            raise OSError(f"{archive} has no member {member!r}")
    for target in chosen.values():
        if target.startswith("/") or ".." in Path(target).parts:
            raise OSError(f"{archive}: refusing to write outside the dataset folder: {target!r}")
    return chosen


def _extract(blob: bytes, name: str, members: Mapping[str, str], out: Path) -> None:
    """Write the requested archive members (or the plain file) into ``out``."""
    if name.endswith((".zip", ".whl")):
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            for member, target in _select(archive.namelist(), members, name).items():
                _write(out / target, archive.read(member))
    elif name.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(fileobj=io.BytesIO(blob)) as archive:
            chosen = _select(archive.getnames(), members, name)
            for member, target in chosen.items():
                handle = archive.extractfile(member)
                if handle is None:
                    raise OSError(f"{name}: {member!r} is not a regular file")
                _write(out / target, handle.read())
    else:
        if len(members) != 1:
            raise ValueError(f"a plain-file source maps to exactly one file, got {dict(members)}")
        _write(out / next(iter(members.values())), blob)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _fetch_one(source: Source, staging: Path) -> None:
    if source.kind == "url" and source.location.endswith("/"):
        for member, target in source.members.items():
            _write(staging / target, _download(source.location + member))
    elif source.kind == "url":
        blob = _download(source.location)
        name = source.location.rsplit("/", 1)[-1]
        _check_archive(blob, source, source.location)
        _extract(blob, name, source.members, staging)
    elif source.kind == "pypi_wheel":
        with tempfile.TemporaryDirectory() as tmp:
            wheel = _pip_download_wheel(source.location, Path(tmp))
            blob = wheel.read_bytes()
            _check_archive(blob, source, wheel.name)
            _extract(blob, wheel.name, source.members, staging)
    else:
        raise ValueError(f"unknown source kind {source.kind!r} (valid: url, pypi_wheel)")


def fetch(
    name: str,
    folder: Path,
    sources: list[Source],
    checksums: Mapping[str, str | None],
    log: Callable[[str], None] | None = None,
) -> Path:
    """Fetch a dataset into ``folder`` from the first source that works.

    Args:
        name: the dataset name, for messages.
        folder: where the files go (created; existing files are kept unless replaced).
        sources: tried in order.
        checksums: file name (relative to ``folder``) -> SHA-256, or ``None`` when
            no checksum is published; the fetched files must include all of them
            (a source with its own ``files`` is checked against those instead).
        log: receives one line per attempt (default: printed to stderr).

    Raises:
        FetchError: listing every source tried, why it failed, and what to do.
    """
    log = log or _stderr
    failures = []
    for source in sources:
        log(f"fetching {name} from {source.describe()} ...")
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=_parent_for(folder)))
        try:
            _fetch_one(source, staging)
            expected = source.files if source.files is not None else checksums
            unverified = verify_files(staging, expected)
        except (OSError, ValueError, ChecksumError, zipfile.BadZipFile, tarfile.TarError,
                subprocess.SubprocessError) as error:
            failures.append(f"{source.describe()}: {error}")
            shutil.rmtree(staging, ignore_errors=True)
            continue
        folder.mkdir(parents=True, exist_ok=True)
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            target = folder / path.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
        shutil.rmtree(staging, ignore_errors=True)
        verified = len(expected) - len(unverified)
        log(f"fetched {name} into {folder} ({verified} file(s) verified by SHA-256)")
        for file in unverified:
            log(f"warning: {file} has no published checksum; its SHA-256 is "
                f"{sha256_of(folder / file)}")
        return folder
    tried = "; ".join(failures) if failures else "no sources listed"
    raise FetchError(
        f"could not fetch {name} (tried: {tried}). "
        f"Download the files yourself into {folder} (or pass --root / set GRAPHLEARN_DATA "
        f"to a folder that holds them)."
    )


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def _parent_for(folder: Path) -> Path:
    """The nearest existing ancestor's child to stage into (same filesystem)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    return folder.parent
