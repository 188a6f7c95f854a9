"""Tasks: what is specific to a kind of problem (data, batches, loss, evaluation).

See :mod:`graphlearn.tasks.base` for the interface the trainer drives.
Importing this package registers the built-in tasks in :data:`TASKS`; a new
task module adds its import here.
"""

from graphlearn.tasks import kg, link, node, ogbl, recommendation  # noqa: F401  (register the tasks)
from graphlearn.tasks.base import TASKS, Task, build_task
from graphlearn.tasks.kg import KGTask
from graphlearn.tasks.link import LinkTask
from graphlearn.tasks.node import NodeTask
from graphlearn.tasks.ogbl import OgblTask
from graphlearn.tasks.recommendation import RecommendationTask

__all__ = ["TASKS", "KGTask", "LinkTask", "NodeTask", "OgblTask", "RecommendationTask", "Task",
           "build_task"]
