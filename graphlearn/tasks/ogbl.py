r"""OGB link property prediction on the official split (``task: ogbl``).

For the OGB link datasets without relation types whose metric is Hits@K against a
shared pool of negatives: ``ogbl-ddi`` (Hits@20), ``ogbl-collab`` (Hits@50) and
``ogbl-ppa`` (Hits@100), loaded by :func:`graphlearn.data.ogb.load_ogbl` (its
``split_edge`` is OGB's ``get_edge_split()``). The protocol is that of OGB's
reference examples (``examples/linkproppred/ddi/gnn.py``):

* **Message graph**: the training edges ``split_edge["train"]["edge"]``, both
  directions, duplicates merged (OGB's ``ToSparseTensor``); the same graph for
  training and for scoring validation and test pairs (the held-out edges are never
  in it).
* **Training**: the positive training edges in a random order, ``train.batch_size``
  per step (OGB: ``64 * 1024``); the model encodes the whole graph every step
  (``model.encode(x, edge_index)``, ``x`` ``None`` without node features) and
  scores the batch's positives and ``train.num_negative`` random negatives per
  positive (OGB: one) with ``model.decode(z, pairs)``. Negatives are ordered node
  pairs, never a self-loop or a training edge, distinct within a batch
  (:class:`~graphlearn.tasks.negatives.StrictPairSampler`: PyG's
  ``negative_sampling`` as OGB calls it, drawn from the trainer's generator).
  Loss (OGB's): :math:`-\overline{\log \sigma(s^+)} - \overline{\log(1 - \sigma(s^-))}`,
  each term a mean over its pairs, computed stably as softplus of the logits.
  OGB's examples clip each part's gradient norm to 1: ``train.clip_grad_norm: 1.0``.
* **Evaluation**: scores of the split's positive ``edge`` and negative ``edge_neg``
  pairs, ``eval.batch_size`` pairs at a time, from one encoding of the graph; Hits@K
  for every K in ``eval.ks`` and the official K through ``ogb.linkproppred.Evaluator``
  (:func:`graphlearn.metrics.ogb.ogb_evaluate`): the fraction of positives scoring
  strictly above the K-th highest negative. Metrics ``hits@K``; the default
  ``train.metric`` is the official one (ddi ``hits@20``). The Evaluator is OGB's
  own code; without the ``ogb`` package the task fails at construction, naming the
  ``graphlearn[ogb]`` extra.

Models: any full-graph link model with ``encode(x, edge_index)`` /
``decode(z, pairs)`` (``gnn_lp``: OGB's GCN / GraphSAGE / a sheaf encoder with an
MLP predictor). Without node features (ddi) the model must learn node embeddings
(its constructor takes ``num_nodes`` and no ``in_channels`` is passed).
Not covered: ``ogbl-citation2`` (MRR against per-source negatives), the knowledge
graphs (``task: kg``), and OGB's collab variant that adds validation edges to the
message graph at test time.

Distributed (:mod:`graphlearn.tasks.base`): every rank draws the global
permutation and the whole batch's negatives, then keeps its contiguous share of
the positives and the matching block of ``k`` negatives per positive (each rank
encodes the whole graph); evaluation scores a contiguous slice of each pair list
per rank and gathers the scores in order before the Evaluator runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from graphlearn.errors import ConfigError, GraphlearnError
from graphlearn.metrics.bootstrap import EvaluationSample
from graphlearn.metrics.ogb import OGB_METRICS, ogb_evaluate, ogb_name
from graphlearn.tasks.base import TASKS, Task
from graphlearn.tasks.negatives import StrictPairSampler
from graphlearn.typing import with_ogb

__all__ = ["OgblBatch", "OgblTask", "ogbl_loss"]


class OgblBatch(NamedTuple):
    """A training batch: positive pairs ``[2, b]`` and negative pairs ``[2, b * k]``
    (positive ``i``'s block is ``[i * k, (i + 1) * k)``)."""

    pos: Tensor
    neg: Tensor


def ogbl_loss(pos_logits: Tensor, neg_logits: Tensor) -> Tensor:
    r"""OGB's link loss :math:`-\operatorname{mean}\log\sigma(s^+) -
    \operatorname{mean}\log(1 - \sigma(s^-))` from logits ``[P]`` and ``[Q]``
    (``softplus(-s) = -log σ(s)``; OGB adds ``1e-15`` inside its logs instead)."""
    return F.softplus(-pos_logits).mean() + F.softplus(neg_logits).mean()


@TASKS.register("ogbl")
class OgblTask(Task):
    """OGB link property prediction (module docstring).

    Attributes (after setup):
        dataset: the OGB name (``"ogbl-ddi"``).
        num_nodes: ``N``.
        x: node features ``[N, F]`` (float) or ``None``.
        edge_index: the message graph ``[2, E]`` (training edges, both directions).
        train_pos: positive training pairs ``[2, P]``.
        eval_pairs: ``{"valid"|"test": (pos [2, n], neg [2, m])}``.
    """

    name = "ogbl"
    losses = ("bce",)
    supports_distributed = True

    # -- configuration -----------------------------------------------------------------

    def check_config(self, cfg: Any) -> None:
        super().check_config(cfg)
        if cfg.eval.ranking_mode != "pessimistic":
            raise ConfigError("eval.ranking_mode is not used by task 'ogbl' (OGB's Evaluator "
                              "counts a positive as a hit only when it scores strictly above "
                              "the K-th negative); remove it")
        if not with_ogb():
            raise ConfigError("task 'ogbl' scores with OGB's official Evaluator "
                              "(ogb.linkproppred.Evaluator) and the 'ogb' package is not "
                              "installed: pip install 'graphlearn[ogb]'")

    def setup(self, data: Any) -> None:
        cfg = self.cfg
        where = cfg.data.name
        split_edge = getattr(data, "split_edge", None)
        if split_edge is None:
            raise ConfigError(f"{where}: task 'ogbl' needs an OGB link dataset with its "
                              f"official split (split_edge, graphlearn.data.ogb.load_ogbl)")
        if getattr(data, "edge_type", None) is not None:
            raise ConfigError(f"{where}: a knowledge graph (relation types); use task 'kg'")
        self.dataset = ogb_name(getattr(data, "name", None) or where)
        official = OGB_METRICS[self.dataset]
        if not official.startswith("hits@"):
            raise ConfigError(f"{self.dataset}: task 'ogbl' implements the Hits@K datasets "
                              f"(" + ", ".join(k for k, v in OGB_METRICS.items()
                                               if v.startswith("hits@"))
                              + f"); this one's metric is {official}")
        for split, keys in (("train", ("edge",)), ("valid", ("edge", "edge_neg")),
                            ("test", ("edge", "edge_neg"))):
            part = split_edge.get(split) if hasattr(split_edge, "get") else None
            missing = [key for key in keys if part is None or key not in part]
            if missing:
                raise ConfigError(f"{where}: split_edge[{split!r}] lacks "
                                  f"{', '.join(repr(k) for k in missing)}")
        n = self.num_nodes = int(data.num_nodes)
        self.train_pos = self._pairs(split_edge["train"]["edge"], "train", "edge")  # (2, P)
        if self.train_pos.size(1) == 0:
            raise GraphlearnError(f"{where}: the training split has no edges")
        u, v = self.train_pos
        keys = torch.unique(torch.cat([u * n + v, v * n + u]))  # both directions, merged
        keys = keys[keys // n != keys % n]
        self.edge_index = torch.stack([keys // n, keys % n])  # (2, E) message graph
        self.eval_pairs = {split: (self._pairs(split_edge[split]["edge"], split, "edge"),
                                   self._pairs(split_edge[split]["edge_neg"], split, "edge_neg"))
                           for split in ("valid", "test")}
        x = getattr(data, "x", None)
        self.x = x.float() if isinstance(x, Tensor) and x.dim() == 2 else None
        self.sampler = StrictPairSampler(self.edge_index, n)
        self._check_model()

    def _pairs(self, edges: Any, split: str, key: str) -> Tensor:
        """``split_edge[split][key]`` ``[n, 2]`` as pairs ``[2, n]``, ids checked."""
        edges = torch.as_tensor(edges).long()
        if edges.dim() != 2 or edges.size(1) != 2:
            raise ConfigError(f"{self.cfg.data.name}: split_edge[{split!r}][{key!r}] must be "
                              f"[n, 2] node pairs, got shape {list(edges.shape)}")
        if edges.numel() and (int(edges.min()) < 0 or int(edges.max()) >= self.num_nodes):
            raise ConfigError(f"{self.cfg.data.name}: split_edge[{split!r}][{key!r}] has node "
                              f"ids outside [0, {self.num_nodes})")
        return edges.t().contiguous()

    def _check_model(self) -> None:
        """Fail before training for models this task cannot run."""
        import graphlearn.models  # noqa: F401  (registers the models)
        from graphlearn.models.registry import MODELS, model_hyperparameters

        name = self.cfg.model.name
        cls = MODELS.get(name)
        if getattr(cls, "uses_graph", False) or not (hasattr(cls, "encode")
                                                     and hasattr(cls, "decode")):
            raise ConfigError(f"model {name!r} is not a full-graph link model "
                              f"(encode(x, edge_index) / decode(z, pairs)); task 'ogbl' "
                              f"runs those, e.g. gnn_lp")
        if self.x is None and "num_nodes" not in model_hyperparameters(name):
            raise ConfigError(f"{self.dataset} has no node features and model {name!r} "
                              f"needs them (in_channels); use a model that learns node "
                              f"embeddings, e.g. gnn_lp")

    def to(self, device: torch.device | str) -> OgblTask:
        super().to(device)
        self.edge_index = self.edge_index.to(self.device)
        self.x = None if self.x is None else self.x.to(self.device)
        self.eval_pairs = {split: (pos.to(self.device), neg.to(self.device))
                           for split, (pos, neg) in self.eval_pairs.items()}
        return self

    # -- model ---------------------------------------------------------------------------

    def model_context(self) -> dict[str, Any]:
        return {"in_channels": None if self.x is None else int(self.x.size(1)),
                "num_nodes": self.num_nodes}

    # -- training ------------------------------------------------------------------------

    def num_batches(self) -> int:
        return -(-self.train_pos.size(1) // self.cfg.train.batch_size)

    def num_examples(self, batch: OgblBatch) -> int:
        return int(batch.pos.size(1))

    def train_batches(self, epoch: int, generator: torch.Generator) -> Iterator[OgblBatch]:
        size, k = self.cfg.train.batch_size, self.cfg.train.num_negative
        order = torch.randperm(self.train_pos.size(1), generator=generator)
        for start in range(0, order.numel(), size):
            pos = self.train_pos[:, order[start:start + size]]  # (2, b)
            neg = self.sampler.sample(pos.size(1) * k, generator)  # (2, b * k)
            if self.world_size > 1:  # this rank's positives and their blocks of negatives
                share = self.shard(pos.size(1))
                pos, neg = pos[:, share], neg[:, share.start * k:share.stop * k]
            yield OgblBatch(pos, neg)

    def training_step(self, model: nn.Module, batch: OgblBatch) -> Tensor:
        z = model.encode(self.x, self.edge_index)  # (N, hidden): the whole graph, every step
        pos = model.decode(z, batch.pos.to(self.device))  # (b,)
        neg = model.decode(z, batch.neg.to(self.device))  # (b * k,)
        return ogbl_loss(pos, neg)

    # -- evaluation ----------------------------------------------------------------------

    def ks(self) -> list[int]:
        """The Hits@K cut-offs reported: ``eval.ks`` and the official K."""
        official = int(OGB_METRICS[self.dataset].split("@")[1])
        return sorted({*self.cfg.eval.ks, official})

    def metric_names(self) -> list[str]:
        return [f"hits@{k}" for k in self.ks()]

    def has_split(self, split: str) -> bool:
        return split in self.eval_pairs and self.eval_pairs[split][0].size(1) > 0 \
            and self.eval_pairs[split][1].size(1) > 0

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        pos, neg = self._split_scores(model, split)
        return ogb_evaluate(self.dataset, pos, neg, ks=self.ks())

    def evaluation_sample(self, model: nn.Module, split: str) -> EvaluationSample:
        """The split's positive edges, resampled against the fixed negative pool.

        Hits@K counts the positives scored above the K-th best negative. The pool is
        held fixed: the K-th largest of ~10^5 negatives is an extreme order statistic,
        for which resampling the pool is not a valid bootstrap (its draws are
        inconsistent for fixed K), so the interval covers the positives' sampling
        noise, given the negatives.
        """
        pos, neg = self._split_scores(model, split)
        ks = self.ks()
        return EvaluationSample(lambda idx: ogb_evaluate(self.dataset, pos[idx], neg, ks=ks),
                                int(pos.numel()), None,
                                "positive edge, against the split's fixed negative pool")

    def _split_scores(self, model: nn.Module, split: str) -> tuple[Tensor, Tensor]:
        """Scores (CPU) of the split's positive and negative pairs, one encoding."""
        if split not in self.eval_pairs:
            raise ConfigError(f"cannot evaluate on split {split!r} (valid: valid, test)")
        if not self.has_split(split):
            raise GraphlearnError(f"{self.cfg.data.name}: the {split} split has no positive "
                                  f"or no negative pairs")
        with torch.no_grad():
            z = model.encode(self.x, self.edge_index)
            pos, neg = (self._scores(model, z, pairs) for pairs in self.eval_pairs[split])
        return pos.cpu(), neg.cpu()

    def _scores(self, model: nn.Module, z: Tensor, pairs: Tensor) -> Tensor:
        """Scores ``[M]`` of ``pairs [2, M]``, ``eval.batch_size`` at a time; under
        torchrun this rank's contiguous slice, gathered in order."""
        distributed = self.world_size > 1 and dist.is_initialized()
        if distributed:
            pairs = pairs[:, self.shard(pairs.size(1))]
        size = self.cfg.eval.batch_size
        out = [z.new_zeros(0)]  # an empty slice scores nothing
        for start in range(0, pairs.size(1), size):
            out.append(model.decode(z, pairs[:, start:start + size]).float())
        scores = torch.cat(out)
        return self.gather(scores) if distributed else scores

    # -- reporting -------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "nodes": self.num_nodes,
                "features": 0 if self.x is None else int(self.x.size(1)),
                "message_edges": int(self.edge_index.size(1)),
                "train": int(self.train_pos.size(1)),
                **{f"{split}{suffix}": int(pairs[i].size(1))
                   for split, pairs in self.eval_pairs.items()
                   for i, suffix in ((0, ""), (1, "_neg"))}}
