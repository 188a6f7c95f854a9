"""Typed, frozen configuration objects for the training pipeline.

A run is described by one :class:`Config`: frozen dataclasses, one per section
(``data``, ``model``, ``train``, ``eval``), built from YAML with
:func:`load_config` and written back with :func:`save_config`. Nothing here
imports torch, so a bad config fails before anything heavy is loaded.

Loading is strict, because a config value that silently does nothing is a bug
that costs a run:

- an unknown key is an error naming the full dotted key and the nearest valid
  one (``unknown key 'train.num_negtive'; did you mean 'num_negative'?``);
- a wrong type is an error naming the key, the expected type and the value
  (``bool`` is not an ``int``; an ``int`` is accepted for a ``float``);
- a missing required key is an error naming it;
- an option of another task (``data.ratios`` in a ``kg`` config) is an error;
- errors in a file name the file and line, errors in an override name the override.

Overrides are ``key=value`` strings with dotted keys (``train.lr=0.001``,
``eval.ks=[5,10]``, ``data.root=null``); the value is parsed as YAML by a
subclass of ``yaml.SafeLoader``, never evaluated::

    cfg = load_config("experiments/configs/recommendation/ml-100k/bpr_mf.yaml",
                      ["train.lr=0.001", "model.params.dim=128"])
    cfg = dataclasses.replace(cfg, out="runs/bpr")   # configs are never mutated
    save_config(cfg, "runs/bpr/config.yaml")

The reference in ``docs/config.md`` is generated from these dataclasses by
:func:`config_reference_markdown` (``python experiments/tools/gen_config_docs.py``)
and a test checks that the committed file matches.
"""

from __future__ import annotations

import contextvars
import copy
import dataclasses
import functools
import math
import operator
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from graphlearn.errors import ConfigError
from graphlearn.io import atomic_write
from graphlearn.registry import did_you_mean, normalize_name

__all__ = [
    "FORWARD_VARIANTS",
    "LAYERWISE_VARIANTS",
    "OGBL_METRICS",
    "TASK_DEFAULTS",
    "Config",
    "ConfigKeyError",
    "DataConfig",
    "EvalConfig",
    "ForwardSection",
    "ModelConfig",
    "TrainConfig",
    "apply_overrides",
    "config_reference_markdown",
    "dump_config",
    "from_dict",
    "load_config",
    "parse_override",
    "save_config",
    "to_dict",
]


class ConfigKeyError(ConfigError):
    """A :class:`~graphlearn.errors.ConfigError` about one key.

    Args:
        key: the dotted key (``"train.lr"``, ``"eval.ks[1]"``), used to point at
            the file line or the override that set it.
        message: the full message.
    """

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(message)

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # picklable across processes
        return type(self), (self.key, str(self))


# ----------------------------------------------------------------------------------------
# YAML: safe loading with YAML 1.2 floats, readable dumping
# ----------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``1e-3`` as a float.

    PyYAML follows YAML 1.1, where a float needs a dot (``1.0e-3``) and ``1e-3``
    is the string ``'1e-3'``; a learning rate written the usual way would then be
    a type error. Only this implicit resolver is added: nothing is constructed
    that ``yaml.safe_load`` would not construct.
    """


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


class _Dumper(yaml.SafeDumper):
    """``yaml.SafeDumper`` writing lists of scalars in flow style (``ks: [10, 20]``)."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flow = all(not isinstance(item, (list, tuple, dict)) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def _yaml_error_location(error: yaml.YAMLError) -> tuple[int | None, str]:
    """The 1-based line and a one-line description of a YAML parse error."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    parts = [getattr(error, "context", None), getattr(error, "problem", None)]
    text = ", ".join(p for p in parts if p) or str(error).splitlines()[0]
    if mark is not None:
        text += f" (column {mark.column + 1})"
    return line, text


# ----------------------------------------------------------------------------------------
# Generic conversion: mapping -> (nested) dataclass, with key-naming errors
# ----------------------------------------------------------------------------------------

#: The dotted prefix of the section being constructed by :func:`from_dict`, so the
#: checks in ``__post_init__`` name full keys.
_PATH: contextvars.ContextVar[str] = contextvars.ContextVar("graphlearn_config_path", default="")

#: The schema at the root of the current :func:`from_dict` / override walk, so an
#: unknown key can be found in another section.
_ROOT: contextvars.ContextVar[type | None] = contextvars.ContextVar("graphlearn_config_root",
                                                                   default=None)

_NoneType = type(None)
_UNION_TYPES = (Union, types.UnionType)
_BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
_COMPARE = {"ge": operator.ge, "gt": operator.gt, "le": operator.le, "lt": operator.lt}


class _Mismatch(Exception):
    """A value does not have the expected type; ``hint`` is a did-you-mean suffix."""

    def __init__(self, hint: str = "") -> None:
        super().__init__(hint)
        self.hint = hint


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _show(value: Any) -> str:
    """A short rendering of a bad value and its type for error messages."""
    if value is None:
        return "null"
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} ({type(value).__name__})"


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _init_fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls) if f.init}


def _describe(tp: Any) -> str:
    """A human-readable name of a type annotation (``'list of int'``)."""
    if tp is Any:
        return "any value"
    if tp is _NoneType:
        return "null"
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in _UNION_TYPES:
        return " or ".join(_describe(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (list, tuple) or tp in (list, tuple):
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(set(args)) == 1:
                return f"list of {len(args)} {_describe(args[0])}"
            return "list [" + ", ".join(_describe(a) for a in args) + "]"
        return f"list of {_describe(args[0])}" if args else "list"
    if origin is dict or tp is dict:
        if not args:
            return "mapping"
        return f"mapping of {_describe(args[0])} to {_describe(args[1])}"
    if dataclasses.is_dataclass(tp):
        return "mapping"
    return getattr(tp, "__name__", repr(tp))


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against ``tp`` and return its canonical form.

    Raises :class:`_Mismatch` when the value itself has the wrong type, and
    :class:`ConfigKeyError` for problems inside it (a list element, a nested key).
    """
    if tp is Any:
        return copy.deepcopy(value)
    if tp is _NoneType:
        if value is None:
            return None
        raise _Mismatch()
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in _UNION_TYPES:
        if value is None:
            if _NoneType in args:
                return None
            raise _Mismatch()
        hint = ""
        for arg in args:
            if arg is _NoneType:
                continue
            try:
                return _convert(value, arg, key)
            except _Mismatch as mismatch:
                hint = hint or mismatch.hint
        raise _Mismatch(hint)
    if origin is Literal:
        for choice in args:
            if type(choice) is type(value) and choice == value:
                return choice
            if isinstance(choice, str) and isinstance(value, str) \
                    and normalize_name(choice) == normalize_name(value):
                return choice
        names = [c for c in args if isinstance(c, str)]
        raise _Mismatch(did_you_mean(value, names) if isinstance(value, str) else "")
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _Mismatch()
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise _Mismatch()
            items = [_convert_field(v, a, f"{key}[{i}]") for i, (v, a) in
                     enumerate(zip(value, args))]
        else:
            item_type = args[0] if args else Any
            items = [_convert_field(v, item_type, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise _Mismatch()
        key_type, value_type = args or (Any, Any)
        out = {}
        for k, v in value.items():
            try:
                k = _convert(k, key_type, key)
            except _Mismatch:
                raise ConfigKeyError(
                    key, f"invalid key {k!r} in {key!r}: expected {_describe(key_type)}"
                ) from None
            out[k] = _convert_field(v, value_type, _join(key, str(k)))
        return out
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, Mapping):
            return from_dict(tp, value, key)
        raise _Mismatch()
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch()
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch()
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _Mismatch()
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise _Mismatch()
    raise TypeError(f"unsupported config annotation {tp!r} for {key!r}")


def _check_bounds(value: Any, metadata: Mapping[str, Any], key: str) -> None:
    """Apply the ``ge``/``gt``/``le``/``lt`` bounds of a field (to each list element)."""
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_bounds(item, metadata, f"{key}[{i}]")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if isinstance(value, float) and math.isnan(value):
        raise ConfigKeyError(key, f"invalid {key!r}: got NaN")
    for name, symbol in _BOUNDS:
        if name in metadata and not _COMPARE[name](value, metadata[name]):
            raise ConfigKeyError(key, f"invalid {key!r}: must be {symbol} {metadata[name]}, "
                                      f"got {value!r}")


def _convert_field(value: Any, tp: Any, key: str,
                   metadata: Mapping[str, Any] | None = None) -> Any:
    """:func:`_convert` plus bounds, turning a type mismatch into a :class:`ConfigKeyError`."""
    try:
        out = _convert(value, tp, key)
    except _Mismatch as mismatch:
        raise ConfigKeyError(
            key, f"invalid {key!r}: expected {_describe(tp)}, got {_show(value)}{mismatch.hint}"
        ) from None
    if metadata:
        _check_bounds(out, metadata, key)
    return out


def _leaf_keys(cls: type, path: str = "") -> list[str]:
    """Every dotted key of the dataclass ``cls``, sections included."""
    keys = []
    for name, tp in _hints(cls).items():
        keys.append(_join(path, name))
        section = _section_type(tp)
        if section is not None:
            keys += _leaf_keys(section, _join(path, name))
    return keys


def _unknown_key(full_key: str, key: str, valid: Sequence[str]) -> ConfigKeyError:
    """The error for an unknown key: the nearest key of its section, or else the
    same key in another section of the root schema (``epochs`` -> ``train.epochs``)."""
    hint = did_you_mean(key, list(valid))
    root = _ROOT.get()
    if not hint and root is not None:
        elsewhere = [k for k in _leaf_keys(root)
                     if normalize_name(k.rsplit(".", 1)[-1]) == normalize_name(key)]
        if elsewhere:
            hint = f"; did you mean {' or '.join(repr(k) for k in elsewhere)}?"
    return ConfigKeyError(full_key, f"unknown key {full_key!r}{hint} (valid: {', '.join(valid)})")


T = typing.TypeVar("T")


def from_dict(cls: type[T], mapping: Any, path: str = "") -> T:
    """Build the dataclass ``cls`` (and its nested dataclasses) from a mapping.

    Args:
        cls: a dataclass whose fields are annotated with ``bool``, ``int``,
            ``float``, ``str``, ``Literal[...]``, ``list[X]``, ``tuple[X, ...]``,
            fixed ``tuple[X, Y]``, ``dict[K, V]``, ``Any``, ``X | None`` /
            ``Optional[X]`` or another such dataclass.
        mapping: plain data, as ``yaml.safe_load`` returns it.
        path: the dotted key of ``mapping`` inside the whole config, for messages.

    Raises:
        ConfigKeyError: an unknown key (with the nearest valid one), a value of the
            wrong type (with the expected type), a value out of range, or missing
            required keys.
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"from_dict needs a dataclass type, got {cls!r}")
    if not isinstance(mapping, Mapping):
        where = f"section {path!r}" if path else "the config"
        raise ConfigKeyError(path, f"{where} must be a mapping of keys to values, "
                                   f"got {_show(mapping)}")
    if _ROOT.get() is None:
        token = _ROOT.set(cls)
        try:
            return from_dict(cls, mapping, path)
        finally:
            _ROOT.reset(token)
    fields = _init_fields(cls)
    for key in mapping:
        if not isinstance(key, str):
            where = repr(path) if path else "the config"
            raise ConfigKeyError(path, f"invalid key {key!r} in {where}: keys are strings")
        if key not in fields:
            raise _unknown_key(_join(path, key), key, list(fields))
    missing = [
        _join(path, name) for name, f in fields.items()
        if name not in mapping and (
            (f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
            or (f.metadata.get("required_unless")
                and mapping.get(f.metadata["required_unless"]) is None))
    ]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise ConfigKeyError(missing[0], f"missing required key{plural} "
                                         f"{', '.join(repr(m) for m in missing)}")
    hints = _hints(cls)
    kwargs = {
        name: _convert_field(mapping[name], hints[name], _join(path, name), fields[name].metadata)
        for name in fields if name in mapping
    }
    token = _PATH.set(path)
    try:
        return cls(**kwargs)
    finally:
        _PATH.reset(token)


def to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass (recursively) as plain YAML-safe data: tuples become lists."""
    if not (dataclasses.is_dataclass(obj) and not isinstance(obj, type)):
        raise TypeError(f"to_dict needs a dataclass instance, got {type(obj).__name__}")
    return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# ----------------------------------------------------------------------------------------
# The schema
# ----------------------------------------------------------------------------------------


def _field(default: Any = dataclasses.MISSING, *, help: str,
           factory: Any = dataclasses.MISSING, task: tuple[str, ...] = (),
           variants: tuple[str, ...] = (), required_unless: str | None = None,
           **bounds: float) -> Any:
    """A dataclass field with its help text, the tasks it applies to and numeric bounds.

    ``variants``: the ``"<task>:<variant>"`` forward-learning variants an option of
    the ``forward`` section applies to (setting it for another is an error).
    ``required_unless``: the field has a default (``None``) but is required unless
    that sibling key is set (``model``, unless ``forward``).
    """
    unknown = set(bounds) - {name for name, _ in _BOUNDS}
    if unknown:
        raise TypeError(f"unknown bounds {sorted(unknown)}")
    metadata: dict[str, Any] = {"help": help, **bounds}
    if task:
        metadata["task"] = task
    if variants:
        metadata["variants"] = variants
    if required_unless:
        metadata["required_unless"] = required_unless
    return dataclasses.field(default=default, default_factory=factory, metadata=metadata)


class _Section:
    """Base of the config sections: validates and canonicalises fields on construction.

    Runs for :func:`from_dict`, direct construction and ``dataclasses.replace``
    alike, so no path builds a section with a value of the wrong type.
    """

    def __post_init__(self) -> None:
        path = _PATH.get()
        hints = _hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            canonical = _convert_field(value, hints[f.name], _join(path, f.name), f.metadata)
            if canonical is not value:
                object.__setattr__(self, f.name, canonical)
        self._validate(path)

    def _validate(self, path: str) -> None:
        """Cross-field checks; ``path`` is the section's dotted key."""


#: Defaults that depend on the task, filled in when the config is built.
TASK_DEFAULTS: dict[str, dict[str, str]] = {
    "kg": {"metric": "mrr", "loss": "bce"},
    "link": {"metric": "auroc", "loss": "bce"},
    "node": {"metric": "accuracy", "loss": "ce"},
    "ogbl": {"loss": "bce"},  # metric: the dataset's official one (OGBL_METRICS)
    "recommendation": {"metric": "ndcg@10", "loss": "bpr"},
}

#: The official metric of each OGB link dataset the ``ogbl`` task runs: its
#: ``train.metric`` default (``ogb/linkproppred/master.csv``; a test checks this agrees
#: with :data:`graphlearn.metrics.ogb.OGB_METRICS`). Kept here so a config fails
#: before torch is imported.
OGBL_METRICS: dict[str, str] = {
    "ogbl-ddi": "hits@20",
    "ogbl-collab": "hits@50",
    "ogbl-ppa": "hits@100",
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class DataConfig(_Section):
    """The dataset and how it is split.

    Options marked with a task apply to that task only; setting one to a
    non-default value in a config of another task is an error, so no option
    silently does nothing.
    """

    name: str = _field(help="Dataset card name, as listed by `graphlearn data list` "
                            "(e.g. `ml-100k`, `nations`, `fb237_v1`, `cora`, `ogbl-ddi`).")
    root: str | None = _field(None, help="Data root holding the dataset folders; null uses "
                                         "`$GRAPHLEARN_DATA` or the user cache.")
    download: bool = _field(True, help="Fetch missing dataset files from the card's sources "
                                       "(checksums verified); false fails instead.")
    split_seed: int | None = _field(
        None, task=("recommendation", "link", "node"), ge=0,
        help="Seed of the random split, independent of `train.seed` so the split stays "
             "fixed while training seeds vary; null uses the data layer's default.")
    split: Literal["random", "temporal", "public"] = _field(
        "random", task=("recommendation", "node"),
        help="recommendation: `random` (per-user random split by `ratios`) or `temporal` "
             "(per-user leave-last-out by timestamp: last to test, second-to-last to "
             "validation). node: `random` (seeded random node split by `val_ratio` / "
             "`test_ratio`, the rest trains) or `public` (the dataset's own masks, e.g. "
             "Planetoid's 20 per class / 500 / 1000).")
    ratios: tuple[float, ...] = _field(
        (0.8, 0.1, 0.1), task=("recommendation",), ge=0,
        help="`[train, valid, test]` (or `[train, test]`, no validation) shares of each "
             "user's interactions, normalised to sum 1; `split: random` only.")
    rating_threshold: float | None = _field(
        None, task=("recommendation",),
        help="Keep interactions with `rating >= rating_threshold` as positives; null keeps "
             "all interactions as implicit feedback.")
    user_k_core: int = _field(0, task=("recommendation",), ge=0,
                              help="Keep only users with at least this many interactions "
                                   "(iterated with `item_k_core` to a fixed point); 0: no filter.")
    item_k_core: int = _field(0, task=("recommendation",), ge=0,
                              help="Keep only items with at least this many interactions; "
                                   "0: no filter.")
    val_ratio: float = _field(0.05, task=("link", "node"), ge=0, lt=1,
                              help="Fraction of edges (link) or nodes (node, `split: "
                                   "random`) held out for validation.")
    test_ratio: float = _field(0.1, task=("link", "node"), ge=0, lt=1,
                               help="Fraction of edges (link) or nodes (node, `split: "
                                    "random`) held out for test.")

    def _validate(self, path: str) -> None:
        key = _join(path, "ratios")
        if len(self.ratios) not in (2, 3) or self.ratios[0] <= 0:
            raise ConfigKeyError(key, f"invalid {key!r}: expected [train, valid, test] or "
                                      f"[train, test] with train > 0, got {list(self.ratios)}")
        if self.split != "random" and self.ratios != _default_of(DataConfig, "ratios"):
            raise ConfigKeyError(key, f"{key!r} applies to split 'random' only "
                                      f"(split is {self.split!r}); remove it")
        if self.val_ratio + self.test_ratio >= 1:
            key = _join(path, "test_ratio")
            raise ConfigKeyError(key, f"invalid {key!r}: val_ratio + test_ratio must be < 1, "
                                      f"got {self.val_ratio} + {self.test_ratio}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelConfig(_Section):
    """The model: a registered name and its hyperparameters."""

    name: str = _field(help="Registered model name (e.g. `bpr_mf`, `lightgcn`, `distmult`, "
                            "`gae`); resolved by the model registry, which lists the valid "
                            "names.")
    params: dict[str, Any] = _field(  # noqa: RUF009 (a dataclasses.field)
        factory=dict,
        help="Model hyperparameters, passed to the model's constructor, which validates "
             "them (e.g. `{dim: 64, num_layers: 3}`). Override one with "
             "`model.params.dim=128`.")


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainConfig(_Section):
    """Optimisation, negative sampling, model selection and early stopping."""

    epochs: int = _field(100, ge=1, help="Maximum number of training epochs.")
    batch_size: int = _field(2048, ge=1, help="Training batch size (positives per batch).")
    lr: float = _field(1e-3, gt=0, help="Learning rate.")
    weight_decay: float = _field(0.0, ge=0, help="Weight decay of the optimizer.")
    optimizer: Literal["adam", "adamw", "sgd", "adagrad"] = _field("adam", help="Optimizer.")
    loss: Literal["bce", "ce", "bpr", "softplus"] | None = _field(
        None,
        help="Training loss: `bce` (binary cross-entropy, with self-adversarial negative "
             "weights when `adversarial_temperature` is set), `ce` (softmax cross-entropy "
             "over all entities; kg task with `num_negative: 0` only), `bpr` (Bayesian personalised "
             "ranking), `softplus` (logistic loss on +/-1 labels); null: the task's default "
             "(kg, link, ogbl: `bce`; node: `ce`; recommendation: `bpr`).")
    num_negative: int = _field(1, ge=0, help="Negatives sampled per positive; 0 = 1-vs-all "
                                             "(every entity is a candidate answer; kg task "
                                             "only).")
    negative_mode: Literal["corrupt", "pairs"] | None = _field(
        None,
        help="How the link task forms training negatives: `corrupt` (graph models: "
             "`num_negative` strict negative tails for each positive's query node) or "
             "`pairs` (strict random node pairs, never an edge of the training graph; "
             "for graph models each pair is its own query, TorchDrug's homogeneous NBFNet "
             "protocol); null: the task's default (graph models `corrupt`, other models "
             "`pairs`). Link task only.")
    adversarial_temperature: float | None = _field(
        None, gt=0,
        help="Temperature T of self-adversarial negative weights `softmax(score_neg / T)` "
             "(no gradient through the weights); null: uniform weights.")
    eval_every: int = _field(1, ge=1, help="Evaluate on the validation split every this "
                                           "many epochs (and after the last epoch).")
    metric: str | None = _field(
        None,
        help="Validation metric for model selection and early stopping (e.g. `ndcg@10`, "
             "`recall@20`, `mrr`, `hits@10`, `auroc`); never a test metric. null: the "
             "task's default (kg: `mrr`; link: `auroc`; node: `accuracy`; ogbl: the "
             "dataset's official metric, e.g. ogbl-ddi `hits@20`; recommendation: "
             "`ndcg@10`).")
    patience: int | None = _field(
        10, ge=1,
        help="Stop after this many evaluations without improvement of `metric`; null: "
             "never stop early.")
    clip_grad_norm: float | None = _field(
        None, gt=0,
        help="Clip the gradient norm to this value before every optimizer step "
             "(`torch.nn.utils.clip_grad_norm_`), separately for each parameter group of a "
             "model that defines `clip_groups()` (the OGB link predictors `gnn_lp`: node "
             "embeddings, encoder, predictor, as OGB's examples clip them) and over all "
             "parameters otherwise; null: no clipping.")
    batches_per_epoch: int | None = _field(
        None, ge=1,
        help="End every epoch after this many batches (TorchDrug's `batch_per_epoch`, for "
             "graphs too big for full passes, e.g. ogbl-biokg); each epoch draws a fresh "
             "order; null: every batch.")
    seed: int = _field(0, ge=0, help="Seed of every random generator used in training.")
    num_workers: int = _field(0, ge=0, help="Data-loading worker processes (0: load in "
                                            "the training process).")
    device: Literal["auto", "cpu", "cuda"] = _field(
        "auto", help="`auto` uses CUDA when available, else the CPU.")

    def _validate(self, path: str) -> None:
        if self.metric is not None:
            metric = self.metric.strip().lower()
            if not metric:
                key = _join(path, "metric")
                raise ConfigKeyError(key, f"invalid {key!r}: empty metric name")
            object.__setattr__(self, "metric", metric)


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvalConfig(_Section):
    """Evaluation on the validation and test splits."""

    ks: tuple[int, ...] = _field((10, 20), ge=1, help="Cut-offs K of the top-K metrics "
                                                      "(Recall@K, NDCG@K, Hits@K, ...).")
    batch_size: int = _field(1024, ge=1, help="Queries (users, triples or edges) scored per "
                                              "evaluation batch.")
    ranking_mode: Literal["pessimistic", "optimistic", "average"] = _field(
        "pessimistic",
        help="How ties with the positive count in ranks: `pessimistic` (the protocol: ties "
             "count against the model), `optimistic`, or their `average`.")
    max_valid_triples: int | None = _field(
        None, ge=1,
        help="Validate on a fixed random subset of this many validation triples (drawn once "
             "with seed 0; NBFNet's `fast_test` for ogbl-biokg); test always uses all. Task "
             "`kg` only; null: all.")

    def _validate(self, path: str) -> None:
        if not self.ks:
            key = _join(path, "ks")
            raise ConfigKeyError(key, f"invalid {key!r}: needs at least one cut-off")


#: The forward-learning variants of each task (``graphlearn.train.forward.list_variants``;
#: a test checks the two agree). Kept here so a config fails before torch is imported.
FORWARD_VARIANTS: dict[str, tuple[str, ...]] = {
    "link": ("backprop", "ccl", "ff", "sf", "sf-topdown"),
    "node": ("backprop", "ccl", "ff-label", "ff-virtual", "sf", "sf-topdown"),
}

#: The variants that support ``schedule: layerwise`` (the others: simultaneous only).
LAYERWISE_VARIANTS: tuple[str, ...] = ("link:ff", "link:sf", "node:ff-label", "node:ff-virtual",
                                       "node:sf")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ForwardSection(_Section):
    """Forward learning (ForwardGNN): layer-local, backpropagation-free training.

    Set this section to train a stack of graph convolutions with the variant's
    local losses (`graphlearn.train.forward`, docs/forward.md) instead of a
    `model` by backpropagation; a config has either `model` or `forward`.
    Task `link` or `node`. Every layer (and head) has its own Adam with
    `train.lr` and `train.weight_decay`; `train.epochs` counts full-batch steps
    (per layer under `schedule: layerwise`); `train.eval_every`, `train.metric`,
    `train.patience` (per layer under layerwise) and `train.seed` mean what they
    mean for backprop runs. Options marked with variants apply to those
    `task:variant` pairs only.
    """

    variant: Literal["backprop", "ccl", "ff", "ff-label", "ff-virtual", "sf",
                     "sf-topdown"] = _field(
        help="link: `ff`, `sf`, `sf-topdown`, `ccl`, `backprop`; node: `ff-label`, "
             "`ff-virtual`, `sf`, `sf-topdown`, `ccl`, `backprop` (the same stack trained "
             "end-to-end, the baseline).")
    schedule: Literal["simultaneous", "layerwise"] = _field(
        "simultaneous",
        help="`simultaneous`: every layer updated every step from its own loss; "
             "`layerwise` (link `ff` and `sf`; node `sf`, and `ff-label` / `ff-virtual` with "
             "`label_context: shared`): layer 1 trains for `train.epochs` steps and is "
             "restored to its best validation epoch, then layer 2 on its cached output, "
             "and so on.")
    backbone: Literal["gcn", "sage", "gat", "gatv2"] = _field(
        "gcn", help="The graph convolution of every layer (PyG `GCNConv`, `SAGEConv`, "
                    "`GATConv` and `GATv2Conv` with one head).")
    hidden_channels: int = _field(128, ge=1, help="Output width of every layer.")
    num_layers: int = _field(2, ge=1, help="Number of layers.")
    theta: float = _field(2.0, variants=("link:ff", "link:backprop", "node:ff-label",
                                         "node:ff-virtual"),
                          help="Goodness threshold: g(z) = sum of squares - theta.")
    sf_batch_size: int = _field(1024, ge=1, variants=("link:sf", "link:sf-topdown"),
                                help="Positives per in-batch softmax of the link SF loss.")
    topdown_iterations: int = _field(3, ge=1, variants=("link:sf-topdown",
                                                        "node:sf-topdown"),
                                     help="Top-down recurrence steps at evaluation.")
    ccl_temperature: float = _field(0.1, gt=0, variants=("link:ccl", "node:ccl"),
                                    help="Temperature of CCL's cosine agreement logits.")
    label_context: Literal["shared", "uniform"] = _field(
        "shared", variants=("node:ff-label", "node:ff-virtual"),
        help="What the other nodes show while FF trains: `shared` (one pass per candidate "
             "class shown to every node, as at prediction) or `uniform` (training nodes "
             "show a true / wrong label, the others none).")
    class_members: Literal["train", "none"] = _field(
        "train", variants=("node:ff-virtual",),
        help="Which nodes link to their class node: `train` (every training node, so a "
             "class node aggregates its labelled members) or `none` (a class node only "
             "shows its class). Under GCN's symmetric normalisation many members dilute "
             "the query edge: use `none` with GCN on large training splits "
             "(docs/forward.md).")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(_Section):
    """A whole run: the task, its data, model, training and evaluation.

    Task-dependent defaults (`train.loss`, `train.metric`) are filled in when
    the config is built, so the saved config states what the run used.
    """

    task: Literal["kg", "link", "node", "ogbl", "recommendation"] = _field(
        help="`kg`: knowledge-graph completion (filtered ranking); `link`: homogeneous link "
             "prediction (AUROC/AP); `node`: transductive node classification (accuracy); "
             "`ogbl`: OGB link property prediction on the official split (Hits@K through "
             "OGB's Evaluator; ogbl-ddi, ogbl-collab, ogbl-ppa); `recommendation`: top-K "
             "recommendation (full ranking).")
    data: DataConfig = _field(help="The dataset and its split.")  # noqa: RUF009 (a dataclasses.field)
    model: ModelConfig | None = _field(  # noqa: RUF009 (a dataclasses.field)
        None, required_unless="forward",
        help="The model and its hyperparameters; required unless `forward` is set.")
    forward: ForwardSection | None = _field(  # noqa: RUF009 (a dataclasses.field)
        None, help="Forward learning instead of backpropagation (task `link` or `node`); "
                   "null: train `model` by backpropagation.")
    train: TrainConfig = _field(factory=TrainConfig, help="Training.")  # noqa: RUF009 (a dataclasses.field)
    eval: EvalConfig = _field(factory=EvalConfig, help="Evaluation.")  # noqa: RUF009 (a dataclasses.field)
    out: str | None = _field(None, help="Run directory; the CLI's `--out` overrides it. "
                                        "null: the CLI's default run directory.")

    def _validate(self, path: str) -> None:
        if self.model is None and self.forward is None:
            key = _join(path, "model")
            raise ConfigKeyError(key, f"missing required key {key!r}")
        if self.model is not None and self.forward is not None:
            key = _join(path, "model")
            raise ConfigKeyError(key, f"{key!r} does not apply to a forward-learning run "
                                      f"(the `forward` section describes the stack: "
                                      f"backbone, hidden_channels, num_layers); remove one")
        for f in dataclasses.fields(DataConfig):
            tasks = f.metadata.get("task")
            if tasks and self.task not in tasks \
                    and getattr(self.data, f.name) != _default_of(DataConfig, f.name):
                key = _join(path, f"data.{f.name}")
                only = " and ".join(repr(t) for t in tasks)
                raise ConfigKeyError(key, f"{key!r} applies to task {only} only "
                                          f"(task is {self.task!r}); remove it")
        defaults = dict(TASK_DEFAULTS[self.task])
        if self.task == "ogbl":
            official = {normalize_name(k): v for k, v in OGBL_METRICS.items()}
            name = normalize_name(self.data.name)
            metric = official.get(name, official.get(f"ogbl{name}"))
            if metric is None and self.train.metric is None:
                key = _join(path, "train.metric")
                raise ConfigKeyError(key, f"{key!r} has no default for dataset "
                                          f"{self.data.name!r} under task 'ogbl' (official "
                                          f"metrics: " + ", ".join(f"{k} {v}" for k, v in
                                                                   OGBL_METRICS.items())
                                          + "); set it, e.g. hits@20")
            defaults["metric"] = metric
        changes = {name: value for name, value in defaults.items()
                   if getattr(self.train, name) is None}
        if changes:
            token = _PATH.set(_join(path, "train"))
            try:
                object.__setattr__(self, "train", dataclasses.replace(self.train, **changes))
            finally:
                _PATH.reset(token)
        at_k = re.fullmatch(r"[a-z0-9_]+@(\d+)", self.train.metric or "")
        if self.task == "recommendation" and at_k and int(at_k.group(1)) not in self.eval.ks:
            key = _join(path, "train.metric")
            raise ConfigKeyError(key, f"{key!r} is {self.train.metric!r} but "
                                      f"{int(at_k.group(1))} is not in eval.ks "
                                      f"{list(self.eval.ks)}; add it there")
        self._validate_split(path)
        if self.eval.max_valid_triples is not None and self.task != "kg":
            key = _join(path, "eval.max_valid_triples")
            raise ConfigKeyError(key, f"{key!r} applies to task 'kg' only (task is "
                                      f"{self.task!r}); remove it")
        if self.forward is not None:
            self._validate_forward(path)

    def _validate_split(self, path: str) -> None:
        allowed = {"recommendation": ("random", "temporal"), "node": ("random", "public")}
        key = _join(path, "data.split")
        if self.task in allowed and self.data.split not in allowed[self.task]:
            raise ConfigKeyError(key, f"{key!r} {self.data.split!r} is not a split of task "
                                      f"{self.task!r} (valid: "
                                      f"{', '.join(allowed[self.task])})")
        if self.task == "node" and self.data.split == "public":
            for name in ("val_ratio", "test_ratio", "split_seed"):
                if getattr(self.data, name) != _default_of(DataConfig, name):
                    key = _join(path, f"data.{name}")
                    raise ConfigKeyError(key, f"{key!r} applies to split 'random' only (split "
                                              f"is 'public', the dataset's own masks); "
                                              f"remove it")

    def _validate_forward(self, path: str) -> None:
        fwd = self.forward
        assert fwd is not None
        section = _join(path, "forward")
        if self.task not in FORWARD_VARIANTS:
            key = _join(path, "task")
            raise ConfigKeyError(key, f"{key!r} {self.task!r}: forward learning is implemented "
                                      f"for tasks {', '.join(FORWARD_VARIANTS)} only")
        valid = FORWARD_VARIANTS[self.task]
        if fwd.variant not in valid:
            key = _join(section, "variant")
            raise ConfigKeyError(key, f"invalid {key!r}: {fwd.variant!r} is not a variant of "
                                      f"task {self.task!r}{did_you_mean(fwd.variant, list(valid))}"
                                      f" (valid: {', '.join(valid)})")
        pair = f"{self.task}:{fwd.variant}"
        if fwd.schedule == "layerwise" and pair not in LAYERWISE_VARIANTS:
            key = _join(section, "schedule")
            only = ", ".join(LAYERWISE_VARIANTS)
            raise ConfigKeyError(key, f"{key!r} 'layerwise' is implemented for {only} only "
                                      f"({pair} trains simultaneously); remove it")
        if fwd.schedule == "layerwise" and fwd.label_context != "shared":
            key = _join(section, "label_context")
            raise ConfigKeyError(key, f"{key!r} {fwd.label_context!r}: schedule 'layerwise' "
                                      f"caches the candidate-class passes of label_context "
                                      f"'shared'; use it or schedule 'simultaneous'")
        for f in dataclasses.fields(ForwardSection):
            variants = f.metadata.get("variants")
            if variants and pair not in variants \
                    and getattr(fwd, f.name) != _default_of(ForwardSection, f.name):
                key = _join(section, f.name)
                raise ConfigKeyError(key, f"{key!r} applies to {', '.join(variants)} only "
                                          f"(this run is {pair}); remove it")
        # train options a forward run does not read: an error, not a silent no-op
        unused = ("batch_size", "num_negative", "negative_mode", "adversarial_temperature",
                  "optimizer", "clip_grad_norm", "batches_per_epoch")
        for name in unused:
            if getattr(self.train, name) != _default_of(TrainConfig, name):
                key = _join(path, f"train.{name}")
                raise ConfigKeyError(key, f"{key!r} is not used by forward learning (full "
                                          f"batch, the variant's own negatives and loss, one "
                                          f"Adam per layer); remove it")
        if self.train.loss != TASK_DEFAULTS[self.task]["loss"]:
            key = _join(path, "train.loss")
            raise ConfigKeyError(key, f"{key!r} is not used by forward learning (the variant "
                                      f"defines the losses; forward.variant); remove it")


def _default_of(cls: type, name: str) -> Any:
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


# ----------------------------------------------------------------------------------------
# Overrides, files
# ----------------------------------------------------------------------------------------


def _section_type(tp: Any) -> type | None:
    """The dataclass inside ``tp`` (``X`` or ``X | None``), or ``None``."""
    if dataclasses.is_dataclass(tp):
        return tp
    if typing.get_origin(tp) in _UNION_TYPES:
        for arg in typing.get_args(tp):
            if dataclasses.is_dataclass(arg):
                return arg
    return None


def _is_free_mapping(tp: Any) -> bool:
    """Whether ``tp`` accepts arbitrary keys (``dict[...]``, ``Any``, or those ``| None``)."""
    if tp is Any or tp is dict or typing.get_origin(tp) is dict:
        return True
    if typing.get_origin(tp) in _UNION_TYPES:
        return any(_is_free_mapping(a) for a in typing.get_args(tp) if a is not _NoneType)
    return False


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``"train.lr=0.001"`` into ``("train.lr", 0.001)``.

    The value is parsed as a YAML scalar or flow collection (``[5, 10]``,
    ``{dim: 64}``, ``null``, ``true``); anything else is a plain string. It is
    never evaluated as code.

    Raises:
        ConfigError: no ``=``, an empty key or key part, or unparsable YAML.
    """
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key=value "
                          f"(e.g. train.lr=0.001)")
    key, _, raw = text.partition("=")
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r}: invalid key {key!r} (dotted, e.g. train.lr)")
    try:
        value = yaml.load(raw, Loader=_Loader)
    except yaml.YAMLError as error:
        _, problem = _yaml_error_location(error)
        raise ConfigError(f"override {text!r}: cannot parse {raw!r} as YAML: {problem}") \
            from None
    return key, value


def apply_overrides(raw: Mapping[str, Any], overrides: Sequence[str],
                    schema: type | None = None) -> dict[str, Any]:
    """Return a copy of ``raw`` with ``key=value`` overrides applied, in order.

    Keys are checked against ``schema`` (default :class:`Config`) as they are
    walked, so an unknown key fails with the nearest valid one; below a free-form
    mapping (``model.params``) any key may be set. Values are type-checked later,
    when the config is built.
    """
    schema = Config if schema is None else schema
    out = copy.deepcopy(dict(raw))
    for text in overrides:
        key, value = parse_override(text)
        try:
            _set_path(out, key.split("."), value, schema)
        except ConfigKeyError as error:
            raise ConfigKeyError(error.key, f"override {text!r}: {error}") from None
    return out


def _set_path(node: dict, parts: list[str], value: Any, schema: type) -> None:
    token = _ROOT.set(schema)
    try:
        _walk_and_set(node, parts, value, schema)
    finally:
        _ROOT.reset(token)


def _walk_and_set(node: dict, parts: list[str], value: Any, schema: type) -> None:
    cls: type | None = schema
    for i, part in enumerate(parts):
        dotted = ".".join(parts[: i + 1])
        last = i == len(parts) - 1
        if cls is not None:
            fields = _init_fields(cls)
            if part not in fields:
                raise _unknown_key(dotted, part, list(fields))
            tp = _hints(cls)[part]
            if not last:
                cls = _section_type(tp)
                if cls is None and not _is_free_mapping(tp):
                    raise ConfigKeyError(dotted, f"cannot set {'.'.join(parts)!r}: {dotted!r} "
                                                 f"is a {_describe(tp)}, not a section")
        if last:
            node[part] = value
            return
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            raise ConfigKeyError(dotted, f"cannot set {'.'.join(parts)!r}: {dotted!r} is "
                                         f"{_show(child)}, not a mapping")
        node = child


def _key_lines(node: yaml.Node, path: str, lines: dict[str, int], source: str) -> None:
    """Record the 1-based line of every mapping key under ``node``; reject duplicates."""
    if not isinstance(node, yaml.MappingNode):
        return
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
            continue
        dotted = _join(path, str(key_node.value))
        line = key_node.start_mark.line + 1
        if dotted in lines:
            raise ConfigKeyError(dotted, f"{source}:{line}: duplicate key {dotted!r} "
                                         f"(first at line {lines[dotted]})")
        lines[dotted] = line
        _key_lines(value_node, dotted, lines, source)


def _parse_yaml(text: str, source: str) -> tuple[Any, dict[str, int]]:
    """Parse a config file's text; return the data and the line of every dotted key."""
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as error:
        line, problem = _yaml_error_location(error)
        where = f"{source}:{line}" if line is not None else source
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    lines: dict[str, int] = {}
    if node is not None:
        _key_lines(node, "", lines, source)
    return data, lines


def _locate(error: ConfigKeyError, source: str, lines: Mapping[str, int],
            overridden: Sequence[tuple[str, str]]) -> ConfigKeyError:
    """Prefix an error with the override that set its key, or the file line of the key."""
    for key, text in reversed(overridden):
        if error.key == key or error.key.startswith((key + ".", key + "[")):
            return ConfigKeyError(error.key, f"override {text!r}: {error}")
    key = error.key
    while key:
        if key in lines:
            return ConfigKeyError(error.key, f"{source}:{lines[key]}: {error}")
        key = re.sub(r"(\[\d+\]|\.[^.\[]*)$", "", key) if re.search(r"[.\[]", key) else ""
    return ConfigKeyError(error.key, f"{source}: {error}")


def load_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> Config:
    """Read a YAML config file, apply ``key=value`` overrides and build a :class:`Config`.

    Raises:
        ConfigError: an unreadable file, invalid YAML (file and line), or an
            invalid config (prefixed with the file and line of the key, or with
            the override that set it).
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: config file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{source}: cannot read config file: {error}") from None
    raw, lines = _parse_yaml(text, source)
    if raw is None:
        raise ConfigError(f"{source}: the config file is empty")
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of keys to values at the top "
                          f"level, got {type(raw).__name__}")
    raw = apply_overrides(raw, overrides)
    overridden = [(parse_override(text)[0], text) for text in overrides]  # already validated
    try:
        return from_dict(Config, raw)
    except ConfigKeyError as error:
        raise _locate(error, source, lines, overridden) from None


def dump_config(cfg: Any) -> str:
    """The config as YAML text (``load_config`` reads it back to an equal config)."""
    return yaml.dump(to_dict(cfg), Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False)


def save_config(cfg: Any, path: str | os.PathLike) -> None:
    """Write the config as YAML, atomically (a temporary file, then ``os.replace``)."""
    text = dump_config(cfg)
    atomic_write(path, lambda handle: handle.write(text))


# ----------------------------------------------------------------------------------------
# Reference documentation
# ----------------------------------------------------------------------------------------


def _md_type(tp: Any, metadata: Mapping[str, Any], sections: Mapping[type, str]) -> str:
    if typing.get_origin(tp) is Literal:
        text = "one of " + ", ".join(f"`{a}`" for a in typing.get_args(tp))
    elif typing.get_origin(tp) in _UNION_TYPES:
        text = " or ".join(_md_type(a, {}, sections) for a in typing.get_args(tp))
    elif dataclasses.is_dataclass(tp):
        name = sections.get(tp, tp.__name__)
        text = f"section [`{name}`](#{name})"
    else:
        text = _describe(tp)
    limits = [f"{symbol} {metadata[name]:g}" for name, symbol in _BOUNDS if name in metadata]
    if limits:
        text += " (" + ", ".join(limits) + ")"
    return text


def _md_default(f: dataclasses.Field) -> str:
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
        return "**required**"
    if f.metadata.get("required_unless"):
        return f"**required** unless `{f.metadata['required_unless']}`"
    value = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    if dataclasses.is_dataclass(value):
        return "(see section)"
    text = yaml.dump(_plain(value), Dumper=_Dumper, default_flow_style=True).strip()
    text = text.removesuffix("...").strip()
    return f"`{text}`"


def _md_cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _section_doc(cls: type) -> str:
    doc = (cls.__doc__ or "").strip()
    return "\n".join(line.strip() for line in doc.splitlines())


def config_reference_markdown() -> str:
    """The config reference (``docs/config.md``), generated from the dataclasses."""
    names = {_section_type(tp): name for name, tp in _hints(Config).items()
             if _section_type(tp) is not None}
    sections: list[tuple[str, type]] = [("", Config), *((n, tp) for tp, n in names.items())]

    out = [
        "# Configuration reference",
        "",
        "<!-- Generated from graphlearn/config.py by experiments/tools/gen_config_docs.py;",
        "     do not edit by hand (a test checks this file matches). -->",
        "",
        "A run is described by one YAML file, by convention",
        "`experiments/configs/<task>/<dataset>/<model>.yaml`, read into frozen",
        "dataclasses (`graphlearn.config.Config`). Loading is strict: an unknown key",
        "is an error naming the nearest valid key, a wrong type names the key, the",
        "expected type and the value, a missing required key is named, and an option",
        "of another task (marked *task* below) set in a config is an error, so no",
        "option silently does nothing. Errors name the file and line.",
        "",
        "Override any key on the command line with `key=value` and a dotted key; the",
        "value is read as YAML (never evaluated as code):",
        "",
        "```bash",
        "graphlearn train experiments/configs/recommendation/ml-100k/bpr_mf.yaml \\",
        "    train.lr=0.001 eval.ks=[5,10] data.root=null model.params.dim=128",
        "```",
        "",
        "The resolved config, with every default and task default filled in, is",
        "written to the run directory as `config.yaml` and never modified.",
        "Numbers like `1e-3` are read as floats (YAML 1.2), unlike plain PyYAML.",
        "",
    ]
    for name, cls in sections:
        title = "Top level" if cls is Config else f"`{name}`"
        out += [f"## {title}", "", _section_doc(cls), ""]
        out += ["| key | type | default | description |", "|---|---|---|---|"]
        hints = _hints(cls)
        for f in dataclasses.fields(cls):
            key = f.name if cls is Config else f"{name}.{f.name}"
            help_text = f.metadata.get("help", "")
            if f.metadata.get("task"):
                tasks = ", ".join(f"`{t}`" for t in f.metadata["task"])
                help_text = f"*task: {tasks}.* {help_text}"
            if f.metadata.get("variants"):
                variants = ", ".join(f"`{v}`" for v in f.metadata["variants"])
                help_text = f"*variants: {variants}.* {help_text}"
            row = [f"`{key}`", _md_type(hints[f.name], f.metadata, names), _md_default(f),
                   help_text]
            out.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
        out.append("")
    example = Config(task="recommendation", data=DataConfig(name="ml-100k"),
                     model=ModelConfig(name="bpr_mf", params={"dim": 64}))
    out += [
        "## Example",
        "",
        "The resolved form of a minimal recommendation config",
        "(`task: recommendation`, `data: {name: ml-100k}`,",
        "`model: {name: bpr_mf, params: {dim: 64}}`), as written to a run directory:",
        "",
        "```yaml",
        dump_config(example).rstrip(),
        "```",
        "",
    ]
    return "\n".join(out)
