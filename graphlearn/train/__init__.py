"""Training: the generic trainer, run directories with atomic checkpoints.

* :class:`Trainer` (:mod:`graphlearn.train.trainer`) drives a
  :class:`~graphlearn.tasks.base.Task`: epochs, validation, model selection,
  early stopping, resumable checkpoints, final test metrics.
* :class:`RunDir` (:mod:`graphlearn.train.rundir`) is the run directory layout.
* :func:`train` is the one-call entry point used by the CLI; a config with a
  ``forward:`` section trains with
  :class:`~graphlearn.train.forward.trainer.ForwardTrainer` (forward learning).
"""

from graphlearn.train.run import default_run_dir, load_run, train
from graphlearn.train.rundir import CheckpointError, RunDir, RunDirError
from graphlearn.train.trainer import Trainer

__all__ = ["CheckpointError", "RunDir", "RunDirError", "Trainer", "default_run_dir",
           "load_run", "train"]
