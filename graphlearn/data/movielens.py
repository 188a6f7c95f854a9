"""MovieLens ratings in each of their published formats.

:func:`load_movielens` reads a folder holding one of:

1. a RecBole atomic file ``<variant>.inter`` (``ml-100k.inter``, ``ml-1m.inter``;
   tab-separated, header ``user_id:token item_id:token rating:float
   timestamp:float``, columns located by name);
2. GroupLens ``u.data`` (MovieLens 100K: ``user<TAB>item<TAB>rating<TAB>timestamp``,
   no header);
3. GroupLens ``ratings.dat`` (MovieLens 1M and 10M: ``UserID::MovieID::Rating::Timestamp``);
4. GroupLens ``ratings.csv`` (MovieLens 20M, 25M, latest: header
   ``userId,movieId,rating,timestamp``).

They are tried in that order and the first present is read, so a folder with both
the RecBole and the GroupLens files is read from the RecBole file (the two hold the
same ratings). The result is the explicit-rating interaction graph of
:mod:`graphlearn.data.interactions` (ids in order of first appearance, ratings and
integer timestamps kept); the recommendation protocol turns it into implicit
feedback with :func:`~graphlearn.data.interactions.to_implicit`.
"""

from __future__ import annotations

import os
from pathlib import Path

from torch_geometric.data import Data

from graphlearn.data._io import read_rows
from graphlearn.data.interactions import (
    _Columns,
    _decode_errors,
    load_atomic_inter,
    load_interaction_table,
)
from graphlearn.errors import DatasetNotFoundError

__all__ = ["GROUPLENS_FILES", "find_movielens_file", "load_movielens"]

#: GroupLens rating files, in the order they are looked for, with their delimiter.
GROUPLENS_FILES: dict[str, str] = {"u.data": "\t", "ratings.dat": "::", "ratings.csv": ","}


def find_movielens_file(folder: str | os.PathLike, variant: str | None = None) -> Path:
    """The ratings file :func:`load_movielens` reads from ``folder`` (see module docstring).

    Args:
        folder: the dataset folder; when it lacks rating files but holds a
            sub-folder named ``variant``, that sub-folder is used.
        variant: ``"ml-100k"``, ``"ml-1m"``, ...: picks ``<variant>.inter`` among
            several ``.inter`` files.

    Raises:
        DatasetNotFoundError: no rating file, or several ``.inter`` files and no
            ``variant`` to choose between them.
    """
    folder = Path(folder)
    if variant is not None and not _candidates(folder, variant) and (folder / variant).is_dir():
        folder = folder / variant
    found = _candidates(folder, variant)
    if not found:
        wanted = f"{variant}.inter" if variant else "*.inter"
        raise DatasetNotFoundError(
            f"{folder}: no MovieLens ratings file (looked for {wanted}, "
            f"{', '.join(GROUPLENS_FILES)})"
        )
    if len(found) > 1 and found[1].suffix == ".inter":
        names = ", ".join(p.name for p in found if p.suffix == ".inter")
        raise DatasetNotFoundError(
            f"{folder}: several RecBole files ({names}); pass variant= to choose one"
        )
    return found[0]


def _candidates(folder: Path, variant: str | None) -> list[Path]:
    if not folder.is_dir():
        return []
    if variant is not None:
        inter = [folder / f"{variant}.inter"] if (folder / f"{variant}.inter").is_file() else []
    else:
        inter = sorted(p for p in folder.glob("*.inter") if p.is_file())
    return inter + [folder / name for name in GROUPLENS_FILES if (folder / name).is_file()]


def load_movielens(folder: str | os.PathLike, variant: str | None = None) -> Data:
    """Load MovieLens ratings from ``folder`` (format detected, see module docstring).

    Args:
        folder: the dataset folder (e.g. ``<data root>/movielens/ml-100k``).
        variant: the RecBole file stem to prefer (``"ml-100k"``, ``"ml-1m"``).

    Returns:
        The interaction graph: ``user``, ``item``, ``rating`` (1–5), ``timestamp``
        (seconds, long), ``num_users``, ``num_items``, ``user_names``, ``item_names``.

    Raises:
        DatasetNotFoundError: no ratings file in ``folder``.
        DataFormatError: a malformed line, naming file and line.
    """
    path = find_movielens_file(folder, variant)
    if path.suffix == ".inter":
        return load_atomic_inter(path)
    if path.name == "ratings.csv":
        return load_interaction_table(path, user="userId", item="movieId", rating="rating",
                                      timestamp="timestamp", delimiter=",")
    columns = _Columns(path, has_rating=True, has_timestamp=True)
    rows = read_rows(path, 4, delimiter=GROUPLENS_FILES[path.name])
    for line, (user, item, rating, timestamp) in _decode_errors(path, rows):
        columns.add(line, user.strip(), item.strip(), rating, timestamp)
    return columns.build()
