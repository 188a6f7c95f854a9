"""The forward-learning trainer: :class:`ForwardTrainer`, the backprop trainer's sibling.

``graphlearn train CONFIG`` uses it when the config has a ``forward:`` section
(:func:`graphlearn.train.train`). It is a :class:`~graphlearn.train.Trainer`
with the same run directory (``config.yaml``, ``metrics.jsonl``,
``final.json``, atomic ``checkpoints/last.pt`` and ``best.pt``), the same
validation every ``train.eval_every`` epochs, selection on ``train.metric``
of the validation split (test is evaluated once, at the end, with
``best.pt``), the same patience, the same ``--resume``; what differs is the
step and the optimizers:

* the model is a :class:`~graphlearn.train.forward.LayerLocalStack` built by
  the task (:class:`~graphlearn.train.forward.tasks.ForwardTask`) from the
  ``forward`` section, seeded with ``train.seed``;
* every layer (and head part) has its own Adam (:class:`LayerOptimizers`,
  checkpointed together); an epoch is one full-batch step whose local
  losses are summed and backpropagated once: the detached layer inputs keep
  each term's gradient inside its own layer, so no gradient crosses a layer;
* ``schedule: simultaneous``: every optimizer steps every epoch;
  ``train.epochs`` epochs in all.
* ``schedule: layerwise`` (link ``ff`` / ``sf``; node ``sf`` / ``ff-label`` /
  ``ff-virtual``): layer ``l`` trains alone for epochs ``l * E + 1 .. (l + 1) * E``
  (``E = train.epochs``; only its optimizer steps) on the cached output of the
  layers below; validation scores layers ``0..l`` (link: their mean logit;
  node: their summed class scores); at the end of the stage (or when ``train.patience``
  runs out, which ends the stage, not the run) the stack is restored from
  ``best.pt``, i.e. layer ``l`` at its best epoch, and the next layer starts
  with a fresh selection. ``best.pt`` at the end holds every layer at its own
  selected epoch (``final.json``: ``forward.selected_layer_epochs``).

``metrics.jsonl`` records also hold the step's local losses (``losses``) and,
under layerwise, the ``layer`` and its ``layer_epoch``. The checkpoint adds
the per-layer optimizers, the objective's step-to-step state (the top-down
variants' previous outputs), the schedule position (the epoch; under
layerwise the stage follows from it) and the per-layer selections, so a
resumed run ends with the same metrics as an uninterrupted one.

Single process only (``torchrun`` is refused: the forward tasks do not
implement distributed training).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from tqdm import tqdm

from graphlearn.errors import GraphlearnError
from graphlearn.train.forward.tasks import ForwardTask
from graphlearn.train.rundir import RunDir
from graphlearn.train.trainer import Trainer

__all__ = ["ForwardTrainer", "LayerOptimizers"]


class LayerOptimizers:
    """Several optimizers stepped and checkpointed as one (the first ``L`` are the layers').

    Args:
        optimizers: one per layer, then one per head part
            (:meth:`LayerLocalStack.make_optimizers`).
    """

    def __init__(self, optimizers: Iterable[torch.optim.Optimizer]) -> None:
        self.optimizers = list(optimizers)
        if not self.optimizers:
            raise ValueError("LayerOptimizers: no optimizer")

    def __len__(self) -> int:
        return len(self.optimizers)

    def __getitem__(self, index: int) -> torch.optim.Optimizer:
        return self.optimizers[index]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for optimizer in self.optimizers:
            optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        return {"optimizers": [optimizer.state_dict() for optimizer in self.optimizers]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        states = state["optimizers"]
        if len(states) != len(self.optimizers):
            raise ValueError(f"the checkpoint holds {len(states)} optimizers, the stack has "
                             f"{len(self.optimizers)}")
        for optimizer, optimizer_state in zip(self.optimizers, states):
            optimizer.load_state_dict(optimizer_state)


class ForwardTrainer(Trainer):
    """Trains a forward-learning task's stack into the run directory ``run``.

    Args:
        task: the forward task (:func:`~graphlearn.train.forward.tasks.build_forward_task`).
        run, progress, log, command: as :class:`~graphlearn.train.Trainer`.

    Raises:
        GraphlearnError: the data has no validation split (forward runs select on it).
    """

    task: ForwardTask

    def __init__(self, task: ForwardTask, run: RunDir, progress: bool | None = None,
                 log: Callable[[str], None] | None = None,
                 command: Sequence[str] | None = None) -> None:
        if not isinstance(task, ForwardTask):
            raise TypeError(f"ForwardTrainer needs a ForwardTask, got {type(task).__name__}")
        self.selected_layer_epochs: list[int] = []  # global epochs of the finished stages
        self.stopped_layers: list[int] = []  # stages ended by train.patience
        self._bar: tqdm | None = None
        self._stage_ready: int | None = None  # the stage whose caches the task holds
        super().__init__(task, run, progress=progress, log=log, command=command)

    # -- construction ----------------------------------------------------------------------

    def _build(self) -> None:
        if not self.has_valid:
            raise GraphlearnError(f"{self.cfg.data.name}: forward learning selects on the "
                                  f"validation split, which is empty (data.val_ratio, or "
                                  f"the dataset's val_mask)")
        self.model = self.task.build_model()
        self.optimizer = LayerOptimizers(self.task.make_optimizers(self.model))

    @property
    def layerwise(self) -> bool:
        return self.task.layerwise

    @property
    def num_layers(self) -> int:
        return len(self.model.layers)

    def total_epochs(self) -> int:
        """``train.epochs``, times the number of layers under ``layerwise``."""
        epochs = self.cfg.train.epochs
        return epochs * self.num_layers if self.layerwise else epochs

    def _stage(self) -> int | None:
        """The layer the next epoch trains (layerwise), else ``None``."""
        if not self.layerwise:
            return None
        return min(self.epoch // self.cfg.train.epochs, self.num_layers - 1)

    # -- state -----------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        state = super()._state()
        state["trainer"]["forward"] = {"selected_layer_epochs": list(self.selected_layer_epochs),
                                       "stopped_layers": list(self.stopped_layers)}
        return state

    def _restore(self, state: dict[str, Any]) -> None:
        super()._restore(state)
        forward = state["trainer"].get("forward") or {}
        self.selected_layer_epochs = [int(e) for e in forward.get("selected_layer_epochs", [])]
        self.stopped_layers = [int(e) for e in forward.get("stopped_layers", [])]
        self._stage_ready = None

    # -- the loop --------------------------------------------------------------------------

    def fit(self, resume: bool = False, max_epochs: int | None = None,
            time_limit_s: float | None = None, finish: bool = False) -> dict[str, Any] | None:
        """As :meth:`Trainer.fit` (``max_epochs`` counts epochs of every stage), without
        ``finish``: a layer-wise run ended mid-stage has untrained layers."""
        if finish:
            raise GraphlearnError(f"{self.run.path}: --finish is not available for forward-"
                              f"learning runs (a run ended mid-stage has untrained layers); "
                              f"resume it without --finish")
        try:
            return super().fit(resume=resume, max_epochs=max_epochs, time_limit_s=time_limit_s)
        finally:
            if self._bar is not None:
                self._bar.close()
                self._bar = None

    def _train_epoch(self) -> None:
        cfg = self.cfg.train
        epoch = self.epoch + 1
        stage = self._stage()
        if self._stage_ready != stage or self.task.stage != stage:
            self.task.begin_stage(self.model, stage)
            self._stage_ready = stage
        if self._bar is None:
            self._bar = tqdm(total=self.total_epochs(), initial=self.epoch, unit="epoch",
                             desc="forward", disable=not self.progress, file=sys.stderr,
                             dynamic_ncols=True, leave=False)
        self.model.train()
        start = time.perf_counter()
        batch = next(iter(self.task.train_batches(epoch, self.generator)))
        # Layerwise: only the current layer's optimizer steps; otherwise all of them (a
        # layer without a loss this step has no gradient, and Adam skips it).
        stepped = [self.optimizer[stage]] if stage is not None else self.optimizer.optimizers
        for optimizer in stepped:
            optimizer.zero_grad(set_to_none=True)
        losses = self.task.local_step(self.model, batch)  # gradients accumulated
        value = float(torch.stack(list(losses.values())).sum())
        if not math.isfinite(value):
            raise GraphlearnError(f"epoch {epoch}: the loss is {value} (not finite); lower "
                                  f"train.lr or check the data")
        for optimizer in stepped:
            optimizer.step()
        train_s = time.perf_counter() - start
        self.train_time_s += train_s
        self.epoch = epoch
        terms = {name: float(loss.detach()) for name, loss in losses.items()}

        stage_epochs = cfg.epochs
        stage_epoch = epoch - stage * stage_epochs if stage is not None else epoch
        where = (f"layer {stage + 1}/{self.num_layers} epoch {stage_epoch:>3}/{stage_epochs}"
                 if stage is not None else f"epoch {epoch:>3}/{stage_epochs}")
        line = (f"{where}  loss {value:.4f} ("
                + ", ".join(f"{k} {v:.4f}" for k, v in terms.items()) + f")  {train_s:.2f}s")
        improved = False
        stage_over = stage_epoch >= stage_epochs
        if stage_epoch % cfg.eval_every == 0 or stage_over:
            extra: dict[str, Any] = {"losses": terms}
            if stage is not None:
                extra.update(layer=stage, layer_epoch=stage_epoch)
            improved = self._validate(epoch, value, train_s, extra)
            best = "-" if self.best_metric is None else f"{self.best_metric:.4f}"
            line += (f"  valid {self.metric} {self._last_value:.4f}"
                     f"{' *' if improved else '  '} (best {best} @ {self.best_epoch})")
            stage_over = stage_over or self.done  # train.patience ran out
        if improved:
            self.run.save_checkpoint("best", self._state())
        if stage_over:
            if stage is not None:
                self.selected_layer_epochs.append(self.best_epoch)
                if self.done and stage_epoch < stage_epochs:
                    self.stopped_layers.append(stage)
            if stage is not None and stage < self.num_layers - 1:
                self._next_stage(stage)
            else:
                self.done = True
        self.run.save_checkpoint("last", self._state())  # after best.pt (Trainer's docstring)
        self.log(line)
        if self._bar is not None:
            self._bar.update(self.epoch - self._bar.n)
            self._bar.set_postfix(loss=f"{value:.4f}", refresh=False)

    def _next_stage(self, stage: int) -> None:
        """End layer ``stage``: restore the stack from ``best.pt`` (the layer at its best
        epoch; the layers below are frozen, those above untouched) and start a fresh
        selection for the next layer."""
        state = self.run.load_checkpoint("best")
        self._check(state, "best")
        self._load_model(state, "best")
        self.best_metric, self.bad_evals = None, 0
        self.done = self.stopped_early = False
        self.epoch = (stage + 1) * self.cfg.train.epochs
        self._stage_ready = None

    # -- the end -----------------------------------------------------------------------------

    def _finish(self) -> dict[str, Any]:
        self.task.begin_stage(self.model, None)  # the final metrics score the whole stack
        self._stage_ready = None
        return super()._finish()

    def _final_extra(self) -> dict[str, Any]:
        fwd = self.task.fwd
        info: dict[str, Any] = {"variant": fwd.variant, "schedule": fwd.schedule,
                                "backbone": fwd.backbone, "num_layers": fwd.num_layers,
                                "hidden_channels": fwd.hidden_channels,
                                "optimizers": len(self.optimizer)}
        if self.layerwise:
            epochs = self.cfg.train.epochs
            info["selected_layer_epochs"] = [e - index * epochs for index, e in
                                             enumerate(self.selected_layer_epochs)]
            info["stopped_layers"] = list(self.stopped_layers)
        return {"forward": info}
