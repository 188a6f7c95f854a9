"""The run directory: one training run's config, metrics, checkpoints and results.

Layout::

    RUN_DIR/
      config.yaml           the resolved config (written once, never modified)
      metrics.jsonl         one JSON object per evaluation:
                            {"epoch", "split", "metrics", "loss", "wall_time_s", ...}
      final.json            written at the end: selected epoch, validation and test
                            metrics of the selected checkpoint, wall time, peak memory,
                            seed, command, git commit, torch version, machine, and
                            ``session_log``: per session (a resumed run has several)
                            its command, commit, threads, epochs, wall time and peak
      checkpoints/last.pt   the state after the latest epoch (for --resume)
      checkpoints/best.pt   the state at the best validation metric so far

Every file but ``metrics.jsonl`` is written atomically: a temporary file in the
same folder, flushed and fsynced, then ``os.replace``; an interrupted write
leaves the previous version intact. ``metrics.jsonl`` is appended line by line;
on resume, lines from epochs after the checkpoint are dropped (the resumed run
writes them again).

Checkpoints hold only tensors and plain containers (dicts, lists, numbers,
strings), so they load with ``torch.load(weights_only=True)``: nothing is
unpickled. A checkpoint that fails to load, or lacks the expected keys, is a
:class:`CheckpointError` naming the file.

A directory is a run directory when it holds ``config.yaml``. Starting a run
in a non-empty directory is an error (:class:`RunDirError`); resuming checks
that the config there is the one being resumed.
"""

from __future__ import annotations

import itertools
import json
import os
import pickle
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from graphlearn.config import Config, load_config, save_config, to_dict
from graphlearn.errors import ConfigError, GraphlearnError
from graphlearn.io import atomic_write

__all__ = ["CHECKPOINT_FORMAT", "CheckpointError", "RunDir", "RunDirError", "atomic_write",
           "load_checkpoint_file", "run_identity"]

#: ``format`` key of every checkpoint, with its version.
CHECKPOINT_FORMAT = "graphlearn-checkpoint"
CHECKPOINT_VERSION = 1
_REQUIRED_KEYS = ("format", "version", "epoch", "model", "optimizer", "trainer", "rng")


class RunDirError(GraphlearnError):
    """A run directory that cannot be used as asked (holds another run, is incomplete)."""


class CheckpointError(GraphlearnError):
    """A checkpoint file that is missing, corrupt or not a graphlearn checkpoint."""


def _json_default(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# Config keys added after runs already existed, with the value that leaves behaviour
# as it was before the key existed. At that value the key is left out of a run's
# identity, so runs started before the key was added keep their identity (and their
# checkpoints stay resumable). Add every new key here whose default is behaviour-neutral.
LATE_KEYS: dict[tuple[str, ...], Any] = {
    ("forward",): None,
    ("train", "clip_grad_norm"): None,
    ("train", "batches_per_epoch"): None,
    ("eval", "max_valid_triples"): None,
}


def run_identity(cfg: Config, keep: Iterable[tuple[str, ...]] = ()) -> dict[str, Any]:
    """The config as a plain dict without what may change between sessions of one run:
    ``out`` (where the run is) and ``data.root`` / ``data.download`` (where the data is).
    Keys of :data:`LATE_KEYS` at their neutral value are left out too (except those in
    ``keep``), so runs keep the identity (and checkpoint fingerprints) they had before
    those keys existed."""
    data = to_dict(cfg)
    data.pop("out", None)
    data["data"].pop("root", None)
    data["data"].pop("download", None)
    keep = set(keep)
    for path, neutral in LATE_KEYS.items():
        *parents, key = path
        section = data
        for name in parents:
            section = section.get(name) or {}
        if path not in keep and key in section and section[key] == neutral:
            del section[key]
    return data


def legacy_identities(cfg: Config) -> list[dict[str, Any]]:
    """The identities ``cfg`` had under earlier versions of the config: every subset of
    the :data:`LATE_KEYS` at their neutral value kept (a run saved while a late key
    existed, before :func:`run_identity` left it out, recorded it)."""
    late = [path for path in LATE_KEYS if path != ("forward",)]
    return [run_identity(cfg, keep)
            for size in range(1, len(late) + 1)
            for keep in itertools.combinations(late, size)]


def _first_difference(a: Any, b: Any, prefix: str = "") -> str | None:
    """The dotted key where two plain config dicts differ, or ``None``."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            diff = _first_difference(a.get(key), b.get(key), f"{prefix}{key}.")
            if diff is not None:
                return diff
        return None
    return None if a == b else prefix.rstrip(".")


class RunDir:
    """A run directory (see module docstring). Create with :meth:`create` or :meth:`open`.

    Attributes:
        path: the directory.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    # -- creating and opening ----------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def final_path(self) -> Path:
        return self.path / "final.json"

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    def checkpoint_path(self, name: str) -> Path:
        """``checkpoints/<name>.pt`` (``name``: ``"last"`` or ``"best"``)."""
        return self.checkpoint_dir / f"{name}.pt"

    def check_new(self, cfg: Config) -> None:
        """Fail unless a new run may start here: ``path`` must not exist or be empty.

        Raises:
            RunDirError: ``path`` is a file, or a non-empty directory (another run,
                or this one: then ``--resume`` continues it).
        """
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"{self.path}: exists and is not a directory")
        if self.path.is_dir() and any(self.path.iterdir()):
            if self.config_path.is_file():
                hint = ("it holds this run: add --resume to continue it, or choose another "
                        "--out" if self._same_config(cfg) else
                        "it holds a different run (config differs at "
                        f"{self._difference(cfg)!r}); choose another --out")
            else:
                hint = "it is not empty and holds no run; choose another --out"
            raise RunDirError(f"{self.path}: cannot start a new run here: {hint}")

    def initialize(self, cfg: Config) -> None:
        """Check (:meth:`check_new`), create the directory and write ``config.yaml``."""
        self.check_new(cfg)
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, self.config_path)

    @classmethod
    def create(cls, path: str | os.PathLike, cfg: Config) -> RunDir:
        """A new run directory at ``path`` holding ``config.yaml`` (:meth:`initialize`)."""
        run = cls(path)
        run.initialize(cfg)
        return run

    @classmethod
    def open(cls, path: str | os.PathLike) -> RunDir:
        """An existing run directory (it must hold ``config.yaml``)."""
        run = cls(path)
        if not run.path.is_dir():
            raise RunDirError(f"{run.path}: no such run directory")
        if not run.config_path.is_file():
            raise RunDirError(f"{run.path}: not a run directory (no config.yaml)")
        return run

    def config(self) -> Config:
        """The run's resolved config."""
        try:
            return load_config(self.config_path)
        except ConfigError as error:
            raise RunDirError(f"{self.path}: unreadable run config: {error}") from None

    def _same_config(self, cfg: Config) -> bool:
        try:
            return run_identity(self.config()) == run_identity(cfg)
        except RunDirError:
            return False

    def _difference(self, cfg: Config) -> str:
        try:
            return _first_difference(run_identity(self.config()), run_identity(cfg)) or "?"
        except RunDirError:
            return "config.yaml"

    def check_resume(self, cfg: Config) -> None:
        """Raise :class:`RunDirError` unless ``cfg`` is the run's config (:func:`run_identity`)."""
        if not self._same_config(cfg):
            raise RunDirError(f"{self.path}: cannot resume: this run's config differs at "
                              f"{self._difference(cfg)!r} (resume with the run's own "
                              f"config: graphlearn train --resume --out {self.path})")

    # -- metrics and results ------------------------------------------------------------------

    def append_metrics(self, record: Mapping[str, Any]) -> None:
        """Append one evaluation record to ``metrics.jsonl`` (flushed and fsynced)."""
        line = json.dumps(record, default=_json_default, sort_keys=False)
        with open(self.metrics_path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every complete record of ``metrics.jsonl`` (a torn last line is skipped)."""
        if not self.metrics_path.is_file():
            return []
        records = []
        for line in self.metrics_path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a kill mid-write
        return records

    def truncate_metrics(self, epoch: int) -> None:
        """Keep only the training-time records of epochs ``<= epoch`` (atomic rewrite)."""
        kept = [r for r in self.read_metrics()
                if not r.get("final") and int(r.get("epoch", 0)) <= epoch]
        text = "".join(json.dumps(r, default=_json_default) + "\n" for r in kept)
        atomic_write(self.metrics_path, lambda h: h.write(text))

    def write_json(self, name: str, obj: Any) -> None:
        """Write ``name`` (e.g. ``final.json``) atomically, indented."""
        text = json.dumps(obj, indent=2, default=_json_default) + "\n"
        atomic_write(self.path / name, lambda h: h.write(text))

    def read_final(self) -> dict[str, Any] | None:
        """``final.json``, or ``None`` when the run has not finished."""
        if not self.final_path.is_file():
            return None
        try:
            return json.loads(self.final_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise RunDirError(f"{self.final_path}: corrupt ({error})") from None

    # -- checkpoints ------------------------------------------------------------------------

    def save_checkpoint(self, name: str, state: Mapping[str, Any]) -> None:
        """Write ``checkpoints/<name>.pt`` atomically (``state``: tensors and plain data)."""
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}
        atomic_write(self.checkpoint_path(name), lambda h: torch.save(payload, h),
                     binary=True)

    def has_checkpoint(self, name: str) -> bool:
        return self.checkpoint_path(name).is_file()

    def load_checkpoint(self, name: str, map_location: str | torch.device = "cpu") -> dict:
        """Load ``checkpoints/<name>.pt`` with ``weights_only=True``.

        Raises:
            CheckpointError: missing, unreadable, corrupt, or not a graphlearn
                checkpoint of a supported version.
        """
        path = self.checkpoint_path(name)
        if not path.is_file():
            raise CheckpointError(f"{path}: checkpoint not found")
        return load_checkpoint_file(path, map_location)


def load_checkpoint_file(path: str | os.PathLike,
                         map_location: str | torch.device = "cpu") -> dict:
    """Load and check one checkpoint file (see :meth:`RunDir.load_checkpoint`)."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile,
            ValueError, KeyError, AttributeError, TypeError) as error:
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise CheckpointError(f"{path}: corrupt or unreadable checkpoint ({reason}); "
                              f"delete it to start over, or restore it") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a graphlearn checkpoint")
    if state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {state.get('version')!r} is not "
                              f"supported (expected {CHECKPOINT_VERSION})")
    missing = [k for k in _REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{path}: incomplete checkpoint (missing {', '.join(missing)})")
    return state
