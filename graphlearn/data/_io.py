"""Line-validated readers for delimited text files.

Every reader reports problems as :class:`~graphlearn.errors.DataFormatError`
naming the file and the 1-based line number.
"""

from __future__ import annotations

import gzip
import math
import os
from collections.abc import Iterator
from pathlib import Path

from graphlearn.errors import DataFormatError


def open_text(path: str | os.PathLike):
    """Open a text file for reading, transparently decompressing ``.gz``."""
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def read_rows(
    path: str | os.PathLike,
    num_columns: int | tuple[int, int],
    delimiter: str | None = "\t",
    skip_header: bool = False,
    allow_blank_lines: bool = True,
) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, fields)`` for each data line of ``path``.

    Args:
        path: the file (``.gz`` is decompressed).
        num_columns: the exact number of fields, or an inclusive ``(min, max)`` range.
        delimiter: the field separator; ``None`` splits on runs of whitespace.
        skip_header: skip the first line.
        allow_blank_lines: skip empty lines (a trailing newline is always fine);
            when ``False`` an empty line is an error.

    Raises:
        DataFormatError: wrong column count or an empty field, naming file and line.
    """
    lo, hi = (num_columns, num_columns) if isinstance(num_columns, int) else num_columns
    expected = str(lo) if lo == hi else f"{lo} to {hi}"
    sep_name = {"\t": "tab", ",": "comma", None: "whitespace", "::": "'::'"}.get(
        delimiter, repr(delimiter)
    )
    with open_text(path) as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and skip_header:
                continue
            line = raw.rstrip("\r\n")
            if not line.strip():
                if allow_blank_lines:
                    continue
                raise DataFormatError(path, number, "empty line")
            fields = line.split(delimiter) if delimiter is not None else line.split()
            if not lo <= len(fields) <= hi:
                raise DataFormatError(
                    path,
                    number,
                    f"expected {expected} {sep_name}-separated fields, found {len(fields)}: "
                    f"{_preview(line)}",
                )
            for column, value in enumerate(fields, start=1):
                if not value.strip():
                    raise DataFormatError(path, number, f"field {column} is empty: {_preview(line)}")
            yield number, fields


def parse_int(value: str, path: str | os.PathLike, line: int, what: str) -> int:
    """Parse an integer field or raise a :class:`DataFormatError` naming it."""
    try:
        return int(value)
    except ValueError:
        raise DataFormatError(path, line, f"{what} must be an integer, got {value!r}") from None


def parse_float(value: str, path: str | os.PathLike, line: int, what: str) -> float:
    """Parse a real-valued field (``nan``/``inf`` rejected) or raise a :class:`DataFormatError`."""
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not math.isfinite(number):
        raise DataFormatError(path, line, f"{what} must be a finite number, got {value!r}")
    return number


def _preview(line: str, limit: int = 80) -> str:
    return repr(line if len(line) <= limit else line[: limit - 3] + "...")
