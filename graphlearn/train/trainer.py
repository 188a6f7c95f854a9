r"""The trainer: epochs, validation, model selection, early stopping, checkpoints.

:class:`Trainer` drives any :class:`~graphlearn.tasks.base.Task`:

1. seeds the global torch RNG and a CPU ``torch.Generator`` with ``train.seed``
   and builds the model (``task.build_model()``) and the optimizer;
2. for each epoch, runs ``task.training_step`` on every batch of
   ``task.train_batches(epoch, generator)`` (a tqdm bar shows the loss and
   examples per second);
3. every ``train.eval_every`` epochs and after the last one, evaluates on the
   validation split, appends the result to ``metrics.jsonl``, keeps
   ``checkpoints/best.pt`` when ``train.metric`` improved (strictly) and stops
   after ``train.patience`` evaluations without improvement;
4. writes ``checkpoints/last.pt`` after every epoch (model, optimizer, epoch,
   best metric, patience counter, global RNG and generator states);
5. at the end loads ``best.pt`` and evaluates it on validation and test
   (test is never looked at before), writing ``final.json``.

Model selection uses the validation split only. Without a validation split
(``data.ratios`` of two parts) the last epoch is selected and
``train.patience`` has no effect.

Resuming (``fit(resume=True)``) restores ``last.pt`` and continues; since
every random draw of training comes from the checkpointed RNG states, the
run ends with the same metrics as an uninterrupted one (on the same machine
and thread count). ``best.pt`` is written before ``last.pt``, so a kill
between the two only makes the resumed run redo an epoch.

A time limit (``fit(time_limit_s=...)``, ``graphlearn train --time-limit``)
ends the session cleanly, between epochs, when the next epoch would not
finish within the limit (:func:`next_epoch_fits`); the run is then resumable
like an interrupted one. The closing evaluation of the selected checkpoint is
not counted in the estimate.

Distributed (``torchrun --nproc_per_node=N``; :func:`graphlearn.train.train`
initialises the process group, gloo on CPU, nccl on CUDA): the task must set
``supports_distributed`` (recommendation, kg, link and ogbl do). Every rank builds the same
model from the same seed and holds the same generator, so all ranks draw the
same global permutation and negatives; rank ``r`` trains on its contiguous
share of each global batch of ``train.batch_size`` (``train.batch_size`` stays
the *global* batch). The model is wrapped in DistributedDataParallel, which
averages the ranks' gradients. Rank ``r``'s loss (a mean over its ``n_r``
examples) is multiplied by ``N * n_r / n`` (``n`` = the global batch, from one
``all_reduce`` per step), so DDP's average is

.. math::
    \frac{1}{N}\sum_r \frac{N n_r}{n} \nabla \bar\ell_r
    = \sum_r \frac{n_r}{n} \nabla \bar\ell_r = \nabla \bar\ell,

the single-process gradient of the batch mean, whether or not ``n`` divides by
``N`` (uneven shards, e.g. the last batch, are weighted by their size; a rank
with an empty share contributes a zero gradient). This holds for every loss
term that is a mean over the batch's examples or does not depend on the batch
(BPR, the squared embedding penalty); a term that is not additive over
examples (``reg_squared: false``, RecBole's norm penalty) is only approximated.
The results equal a single-process run's up to floating-point summation order
(gradients summed per shard, then across ranks). Evaluation is sharded by the
task and reduced once, so every rank gets the same metrics and takes the same
selection and early-stopping decisions without a broadcast. Only rank 0 writes
the run directory (metrics, checkpoints, ``final.json``) and logs; every rank
loads rank 0's checkpoints (``best.pt`` at the end, after a barrier;
``last.pt`` on resume).
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import math
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from tqdm import tqdm

import graphlearn
from graphlearn.config import Config
from graphlearn.errors import GraphlearnError
from graphlearn.tasks.base import Task
from graphlearn.train.rundir import (
    CheckpointError,
    RunDir,
    RunDirError,
    legacy_identities,
    run_identity,
)
from graphlearn.train.utils import (
    DistInfo,
    git_commit,
    machine_info,
    make_optimizer,
    peak_memory_mb,
    resolve_device,
)

__all__ = ["Trainer", "accepted_fingerprints", "config_fingerprint", "next_epoch_fits"]


def next_epoch_fits(session_s: float, limit_s: float, epoch_walls: Sequence[float],
                    previous_mean_s: float | None = None) -> bool:
    """Whether one more epoch should start ``session_s`` seconds into a session limited
    to ``limit_s`` seconds.

    The next epoch (training, validation and checkpoints) is estimated by the slowest
    epoch of this session (``epoch_walls``, wall seconds each), before any by
    ``previous_mean_s`` (the run's wall time per epoch in earlier sessions, set-up
    included), and with neither it starts: a fresh run cannot know, so it always
    trains one epoch.
    """
    estimate = _next_epoch_s(epoch_walls, previous_mean_s)
    return estimate is None or session_s + estimate <= limit_s


def _next_epoch_s(epoch_walls: Sequence[float], previous_mean_s: float | None) -> float | None:
    """:func:`next_epoch_fits`' estimate of the next epoch's wall seconds (``None``: none)."""
    return max(epoch_walls) if epoch_walls else previous_mean_s


def _sha256(identity: dict[str, Any]) -> str:
    import yaml

    return hashlib.sha256(yaml.safe_dump(identity, sort_keys=True).encode()).hexdigest()


def config_fingerprint(cfg: Config) -> str:
    """SHA-256 of :func:`~graphlearn.train.rundir.run_identity` (ties checkpoints to their run)."""
    return _sha256(run_identity(cfg))


def accepted_fingerprints(cfg: Config) -> set[str]:
    """:func:`config_fingerprint` and the fingerprints ``cfg`` had under earlier config
    versions (:func:`~graphlearn.train.rundir.legacy_identities`): a checkpoint with any
    of them belongs to this config."""
    return {config_fingerprint(cfg), *(_sha256(i) for i in legacy_identities(cfg))}


def _stderr_log(message: str) -> None:
    tqdm.write(message, file=sys.stderr)


class _TrainStep(nn.Module):
    """The task's training step as a module, so DistributedDataParallel can wrap it
    (DDP synchronises gradients of what runs through its ``forward``)."""

    def __init__(self, model: nn.Module, task: Task) -> None:
        super().__init__()
        self.model = model
        self.task = task  # not a module: a plain attribute

    def forward(self, batch: Any, empty: bool = False) -> Tensor:
        if empty:  # this rank's share is empty: a zero loss that still reaches every parameter
            return sum(p.sum() for p in self.model.parameters() if p.requires_grad) * 0.0
        return self.task.training_step(self.model, batch)


class Trainer:
    """Trains ``task``'s model into the run directory ``run``.

    Args:
        task: the task (its config is the run's config).
        run: the run directory: created (:meth:`RunDir.create`) for a new run, opened
            (:meth:`RunDir.open`) to resume. :func:`graphlearn.train.train` checks and
            creates it for you.
        progress: show the tqdm bar; ``None``: only when stderr is a terminal.
        log: receives one line per evaluation and status messages
            (default: stderr; pass ``lambda _: None`` to silence it).
        command: the command line recorded in ``final.json`` (default ``sys.argv``).
    """

    def __init__(self, task: Task, run: RunDir, progress: bool | None = None,
                 log: Callable[[str], None] | None = None,
                 command: Sequence[str] | None = None) -> None:
        self.task = task
        self.cfg: Config = task.cfg
        self.run = run
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.log = log or _stderr_log
        self.command = list(sys.argv if command is None else command)
        self.dist = DistInfo.from_env()
        if self.dist.distributed:
            if not dist.is_initialized():
                raise GraphlearnError(f"WORLD_SIZE={self.dist.world_size} but no process "
                                      f"group: train through graphlearn.train.train")
            if not task.supports_distributed:
                raise GraphlearnError(f"task {task.name!r} does not implement distributed "
                                      f"training; run a single process")
            if not self.dist.is_main:
                self.progress, self.log = False, lambda _: None
            task.rank, task.world_size = self.dist.rank, self.dist.world_size
        self.device = self.dist.device(resolve_device(self.cfg.train.device))
        self.metric = str(self.cfg.train.metric)
        self.has_valid = task.has_split("valid")
        task.check_metric(self.metric)
        task.to(self.device)
        self.fingerprint = config_fingerprint(self.cfg)

        torch.manual_seed(self.cfg.train.seed)
        self.generator = torch.Generator().manual_seed(self.cfg.train.seed)
        self._ddp: nn.Module | None = None
        self._build()
        self.scheduler = None  # no scheduler in the config yet; checkpointed when added

        self.epoch = 0  # completed epochs
        self.best_metric: float | None = None
        self.best_epoch = 0
        self.bad_evals = 0
        self.done = False
        self.stopped_early = False
        self.finished_early: dict[str, int] | None = None  # fit(finish=True)
        self.elapsed_s = 0.0  # wall time of previous sessions
        self.train_time_s = 0.0  # time in training steps, all sessions
        self.sessions = 0
        # one record per earlier session that checkpointed (command, commit, epochs, ...)
        self.session_log: list[dict[str, Any]] = []
        self._session_first_epoch = 1
        self._session_start = time.perf_counter()
        self._last_value = math.nan
        # the code that runs is the code at start: record its commit now, not at the end
        self._git_commit = git_commit()

    def _build(self) -> None:
        """Build ``self.model`` (seeded), the DDP wrapper and ``self.optimizer``.

        Subclasses (:class:`graphlearn.train.forward.ForwardTrainer`) build their own;
        ``self.optimizer`` only needs ``state_dict`` / ``load_state_dict``.
        """
        task = self.task
        self.model = task.build_model()
        if self.dist.distributed:
            from torch.nn.parallel import DistributedDataParallel

            # same seed on every rank: identical initial parameters, so nothing is
            # synced at construction (init_sync=False), and buffers (LightGCN's sparse
            # adjacency, derived from the data) never are
            no_buffer_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in
                              inspect.signature(DistributedDataParallel).parameters
                              else {"broadcast_buffers": False})  # torch < 2.13
            self._ddp = DistributedDataParallel(
                _TrainStep(self.model, task),
                device_ids=[self.device] if self.device.type == "cuda" else None,
                init_sync=False, **no_buffer_sync)
        self.optimizer = make_optimizer(self.cfg.train, self.model.parameters())

    def total_epochs(self) -> int:
        """The epochs of the whole run (``train.epochs``)."""
        return self.cfg.train.epochs

    # -- state -----------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        rng: dict[str, Any] = {"torch": torch.get_rng_state(),
                               "generator": self.generator.get_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "epoch": self.epoch,
            "config_sha256": self.fingerprint,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "trainer": {
                "metric": self.metric,
                "best_metric": self.best_metric,
                "best_epoch": self.best_epoch,
                "bad_evals": self.bad_evals,
                "done": self.done,
                "stopped_early": self.stopped_early,
                "elapsed_s": self.elapsed_s + self._session_time(),
                "train_time_s": self.train_time_s,
                "sessions": self.sessions,
                "session_log": [*self.session_log, self._session_record()],
            },
            "rng": rng,
            "task": self.task.state_dict(),
        }

    def _check(self, state: dict[str, Any], name: str) -> None:
        if state.get("config_sha256") not in accepted_fingerprints(self.cfg):
            raise CheckpointError(f"{self.run.checkpoint_path(name)}: belongs to a run with "
                                  f"another config")

    def _load_model(self, state: dict[str, Any], name: str) -> None:
        try:
            self.model.load_state_dict(state["model"])
        except (RuntimeError, KeyError, TypeError) as error:
            reason = " ".join(str(error).split())[:200]
            raise CheckpointError(f"{self.run.checkpoint_path(name)}: model state does not "
                                  f"fit the model ({reason})") from None

    def _restore(self, state: dict[str, Any]) -> None:
        self._check(state, "last")
        self._load_model(state, "last")
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None and state.get("scheduler") is not None:
                self.scheduler.load_state_dict(state["scheduler"])
            trainer = state["trainer"]
            self.epoch = int(state["epoch"])
            self.best_metric = trainer["best_metric"]
            self.best_epoch = int(trainer["best_epoch"])
            self.bad_evals = int(trainer["bad_evals"])
            self.done = bool(trainer["done"])
            self.stopped_early = bool(trainer["stopped_early"])
            self.elapsed_s = float(trainer["elapsed_s"])
            self.train_time_s = float(trainer["train_time_s"])
            self.sessions = int(trainer["sessions"])
            self.session_log = [dict(r) for r in trainer.get("session_log") or []]
            torch.set_rng_state(state["rng"]["torch"])
            self.generator.set_state(state["rng"]["generator"])
            if "cuda" in state["rng"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(state["rng"]["cuda"])
            self.task.load_state_dict(state.get("task") or {})
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            reason = " ".join(str(error).split())[:200]
            raise CheckpointError(f"{self.run.checkpoint_path('last')}: cannot restore "
                                  f"the training state ({reason})") from None

    def _session_time(self) -> float:
        return time.perf_counter() - self._session_start

    def _session_record(self) -> dict[str, Any]:
        """This session's entry of the run's session log, as of now."""
        return {"session": self.sessions, "command": shlex.join(self.command),
                "git_commit": self._git_commit, "threads": torch.get_num_threads(),
                "first_epoch": self._session_first_epoch, "last_epoch": self.epoch,
                "wall_time_s": self._session_time(), "peak_memory_mb": peak_memory_mb()}

    # -- the loop --------------------------------------------------------------------------

    def fit(self, resume: bool = False, max_epochs: int | None = None,
            time_limit_s: float | None = None, finish: bool = False) -> dict[str, Any] | None:
        """Train, select, test; return the content of ``final.json``.

        Args:
            resume: continue from ``checkpoints/last.pt`` (a finished run just
                returns its ``final.json``).
            max_epochs: stop this session after this many epochs, leaving a
                resumable run (returns ``None``); for tests and time-boxed jobs.
            time_limit_s: stop this session, leaving a resumable run (returns
                ``None``), before an epoch that would not end within this many
                seconds of the session's start (:func:`next_epoch_fits`); for jobs
                with a wall-clock limit.
            finish: with ``resume``, train no further: end the run at its last
                completed epoch as if it were the last one planned (the checkpoint
                selected so far is evaluated on validation and test), for a run whose
                compute budget is spent. ``final.json`` records it under
                ``finished_early`` (the epochs trained and planned).
        """
        if finish and not resume:
            raise RunDirError(f"{self.run.path}: finish ends an interrupted run; it needs "
                              f"resume=True")
        self._session_start = time.perf_counter()
        if resume:
            final = self.run.read_final()
            if final is not None:
                self.log(f"{self.run.path}: the run is complete (final.json); nothing to resume")
                return final
            if self.run.has_checkpoint("last"):
                self._restore(self.run.load_checkpoint("last"))
                if self.dist.is_main:
                    self.run.truncate_metrics(self.epoch)
                self.log(f"resuming {self.run.path} after epoch {self.epoch}")
            elif self.dist.is_main:
                self.run.truncate_metrics(0)
                self.log(f"{self.run.path}: no checkpoint yet; starting from epoch 1")
        self.sessions += 1
        self._session_first_epoch = self.epoch + 1
        epochs = self.total_epochs()
        if finish and not self.done and self.epoch < epochs:
            if self.best_epoch == 0:
                raise RunDirError(f"{self.run.path}: nothing to finish: no epoch has been "
                                  f"trained and validated yet (epoch {self.epoch} of {epochs})")
            self.finished_early = {"after_epoch": self.epoch, "epochs_planned": epochs}
            self.log(f"finishing {self.run.path} after epoch {self.epoch} of {epochs} "
                     f"(--finish): the selected epoch {self.best_epoch} is evaluated")
            return self._finish()
        previous_mean = self.elapsed_s / self.epoch if self.epoch else None
        walls: list[float] = []
        while not self.done and self.epoch < epochs:
            if max_epochs is not None and len(walls) >= max_epochs:
                return None
            if time_limit_s is not None and not self._agree(next_epoch_fits(
                    self._session_time(), time_limit_s, walls, previous_mean)):
                estimate = _next_epoch_s(walls, previous_mean)
                self.log(f"stopping after epoch {self.epoch} of {epochs}: another epoch "
                         f"(about {estimate:.0f} s) would pass the time limit of "
                         f"{time_limit_s:.0f} s; continue with --resume")
                return None
            start = time.perf_counter()
            self._train_epoch()
            walls.append(time.perf_counter() - start)
        return self._finish()

    def _agree(self, decision: bool) -> bool:
        """Rank 0's ``decision`` on every rank (each rank's clock differs a little; a
        split decision would leave ranks waiting on each other)."""
        if not self.dist.distributed:
            return decision
        device = self.device if self.device.type == "cuda" else torch.device("cpu")
        flag = torch.tensor([float(decision)], device=device)
        dist.broadcast(flag, src=0)
        return bool(flag.item())

    def _train_epoch(self) -> None:
        epoch = self.epoch + 1
        cfg = self.cfg.train
        self.model.train()
        total_loss, total_examples, steps = 0.0, 0, 0
        start = time.perf_counter()
        batches: Iterable[Any] = self.task.train_batches(epoch, self.generator)
        total = self.task.num_batches()
        if cfg.batches_per_epoch is not None and cfg.batches_per_epoch < total:
            batches, total = itertools.islice(batches, cfg.batches_per_epoch), cfg.batches_per_epoch
        bar = tqdm(batches, total=total,
                   desc=f"epoch {epoch}/{cfg.epochs}", unit="batch", leave=False,
                   disable=not self.progress, file=sys.stderr, dynamic_ncols=True)
        for batch in bar:
            self.optimizer.zero_grad(set_to_none=True)
            loss, value, examples = self._loss(batch)
            if not math.isfinite(value):
                raise GraphlearnError(f"epoch {epoch}: the loss is {value} (not finite); "
                                      f"lower train.lr or check the data")
            loss.backward()
            self._clip_gradients()
            self.optimizer.step()
            steps += 1
            total_loss += value
            total_examples += examples
            if self.progress:
                rate = total_examples / max(time.perf_counter() - start, 1e-9)
                bar.set_postfix(loss=f"{total_loss / steps:.4f}", ex_s=f"{rate:,.0f}",
                                refresh=False)
        bar.close()
        train_s = time.perf_counter() - start
        self.train_time_s += train_s
        self.epoch = epoch
        mean_loss = total_loss / max(steps, 1)
        line = (f"epoch {epoch:>3}/{cfg.epochs}  loss {mean_loss:.4f}  "
                f"{total_examples / max(train_s, 1e-9):,.0f} ex/s  {train_s:.2f}s")

        improved = False
        if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
            if self.has_valid:
                improved = self._validate(epoch, mean_loss, train_s)
                best = "-" if self.best_metric is None else f"{self.best_metric:.4f}"
                line += (f"  valid {self.metric} {self._last_value:.4f}"
                         f"{' *' if improved else '  '} (best {best} @ {self.best_epoch})")
            if self.done or epoch == cfg.epochs:
                self.done = True
        if not self.has_valid and epoch == cfg.epochs:
            self.best_epoch, improved, self.done = epoch, True, True
        if self.dist.is_main:
            if improved:
                self.run.save_checkpoint("best", self._state())
            self.run.save_checkpoint("last", self._state())  # after best.pt (module docstring)
        self.log(line)

    def _clip_gradients(self) -> None:
        """``train.clip_grad_norm``: clip each of the model's ``clip_groups()`` (or all its
        parameters as one group) to that norm. Under DDP the gradients are already the
        averaged ones, so every rank clips the same values."""
        max_norm = self.cfg.train.clip_grad_norm
        if max_norm is None:
            return
        groups = getattr(self.model, "clip_groups", None)
        for group in (groups() if callable(groups) else [list(self.model.parameters())]):
            torch.nn.utils.clip_grad_norm_(group, max_norm)

    def _loss(self, batch: Any) -> tuple[Tensor, float, int]:
        """``(loss to backpropagate, the batch's mean loss, examples)`` of one batch; under
        DDP the loss is rescaled so the averaged gradient is the global batch's (module
        docstring) and the mean loss and examples are the global batch's."""
        if self._ddp is None:
            loss = self.task.training_step(self.model, batch)
            return loss, float(loss.detach()), self.task.num_examples(batch)
        n_local = self.task.num_examples(batch)
        loss = self._ddp(batch, n_local == 0)
        device = self.device if self.device.type == "cuda" else torch.device("cpu")
        stats = torch.tensor([float(n_local), float(loss.detach()) * n_local],
                             dtype=torch.float64, device=device)
        dist.all_reduce(stats, op=dist.ReduceOp.SUM)
        n_global, loss_sum = (float(x) for x in stats.cpu())
        if n_global == 0:
            return loss, 0.0, 0
        scale = self.dist.world_size * n_local / n_global
        return loss * scale, loss_sum / n_global, int(n_global)

    def _validate(self, epoch: int, loss: float, train_s: float,
                  extra: dict[str, Any] | None = None) -> bool:
        """Evaluate on validation, update the selection and patience, append the
        ``metrics.jsonl`` record (plus ``extra``); return whether the metric improved."""
        start = time.perf_counter()
        self.model.eval()
        with torch.no_grad():
            metrics = self.task.evaluate(self.model, "valid")
        self.model.train()
        value = float(metrics[self.metric])
        self._last_value = value
        improved = self.task.improved(self.metric, value, self.best_metric)
        if improved:
            self.best_metric, self.best_epoch, self.bad_evals = value, epoch, 0
        else:
            self.bad_evals += 1
        patience = self.cfg.train.patience
        if patience is not None and self.bad_evals >= patience:
            self.done = self.stopped_early = True
        if not self.dist.is_main:
            return improved
        self.run.append_metrics({
            "epoch": epoch, "split": "valid", "metrics": metrics, "loss": loss,
            "train_time_s": train_s, "eval_time_s": time.perf_counter() - start,
            "wall_time_s": self.elapsed_s + self._session_time(), "best": improved,
            **(extra or {}),
        })
        return improved

    # -- the end -----------------------------------------------------------------------------

    def _final_extra(self) -> dict[str, Any]:
        """Entries a subclass adds to ``final.json``; none here."""
        return {}

    def _finish(self) -> dict[str, Any]:
        if self.dist.distributed:
            dist.barrier()  # rank 0 has written best.pt
        if not self.run.has_checkpoint("best"):
            raise RunDirError(f"{self.run.path}: training ended without a best checkpoint "
                              f"(no validation metric was ever finite)")
        state = self.run.load_checkpoint("best")
        self._check(state, "best")
        if int(state["epoch"]) != self.best_epoch:
            raise CheckpointError(f"{self.run.checkpoint_path('best')}: holds epoch "
                                  f"{state['epoch']}, the run selected epoch {self.best_epoch}")
        self._load_model(state, "best")
        self.model.eval()
        results: dict[str, dict[str, float]] = {}
        with torch.no_grad():
            for split in ("valid", "test"):
                if self.task.has_split(split):
                    start = time.perf_counter()
                    results[split] = self.task.evaluate(self.model, split)
                    if not self.dist.is_main:
                        continue
                    self.run.append_metrics({
                        "epoch": self.best_epoch, "split": split, "metrics": results[split],
                        "final": True, "eval_time_s": time.perf_counter() - start,
                        "wall_time_s": self.elapsed_s + self._session_time(),
                    })
        wall = self.elapsed_s + self._session_time()
        session_log = [*self.session_log, self._session_record()]
        final = {
            "selected_epoch": self.best_epoch,
            "metric": self.metric,
            "selected_by": "valid" if self.has_valid else "last epoch (no validation split)",
            "valid": results.get("valid"),
            "test": results.get("test"),
            "epochs_run": self.epoch,
            "stopped_early": self.stopped_early,
            "seconds_per_epoch": self.train_time_s / max(self.epoch, 1),
            "train_time_s": self.train_time_s,
            "wall_time_s": wall,
            "peak_memory_mb": max(r["peak_memory_mb"] for r in session_log),
            "sessions": self.sessions,
            "session_log": session_log,
            "seed": self.cfg.train.seed,
            "command": shlex.join(self.command),
            "git_commit": self._git_commit,
            "graphlearn_version": graphlearn.__version__,
            "torch_version": torch.__version__,
            "machine": machine_info(self.device),
            "data": self.task.summary(),
            **self._final_extra(),
        }
        if self.device.type == "cuda":
            final["peak_cuda_memory_mb"] = torch.cuda.max_memory_allocated(self.device) / 2**20
        if self.sessions > 1:
            unlogged = self.sessions - len(session_log)
            final["note"] = ("resumed run: peak_memory_mb is the highest of the sessions' "
                             "peaks in session_log; wall and train times add up all sessions"
                             + (f"; {unlogged} earlier session(s) ran before the log was kept "
                                "(their commands and peaks are not in it)" if unlogged else ""))
        if self.finished_early is not None:
            final["finished_early"] = {
                **self.finished_early,
                "note": "ended by `graphlearn train --resume --finish` before the planned "
                        "epochs; the selected checkpoint is the best of the epochs trained"}
        if self.dist.distributed:
            final["world_size"] = self.dist.world_size
            final["note_distributed"] = ("train_time_s, wall_time_s and peak_memory_mb are "
                                         "rank 0's")
        if self.dist.is_main:
            self.run.write_json("final.json", final)
        return final

