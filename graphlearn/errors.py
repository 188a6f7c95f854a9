"""Exceptions with messages a user can act on.

Every error graphlearn raises on bad input derives from :class:`GraphlearnError`;
the CLI turns them into a one-line message and exit code 2.
"""

from __future__ import annotations

from os import PathLike


class GraphlearnError(Exception):
    """Base class of all user-facing graphlearn errors."""


class DataFormatError(GraphlearnError, ValueError):
    """A data file does not follow its format.

    Args:
        path: the file.
        line: 1-based line number, or ``None`` when the problem is not on one line.
        message: what is wrong, and what was expected.
    """

    def __init__(self, path: str | PathLike, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class DatasetNotFoundError(GraphlearnError, FileNotFoundError):
    """A dataset is neither in the given root nor obtainable from its sources."""


class ChecksumError(GraphlearnError):
    """A file's SHA-256 differs from the one in its dataset card."""

    def __init__(self, path: str | PathLike, expected: str, actual: str) -> None:
        self.path = str(path)
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{self.path}: SHA-256 mismatch: expected {expected}, got {actual}"
        )


class FetchError(GraphlearnError):
    """Every source of a dataset failed; the message lists what was tried."""


class ConfigError(GraphlearnError, ValueError):
    """A configuration key or value is invalid; names the key and the accepted values."""
