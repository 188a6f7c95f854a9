"""The model registry: ``model.name`` in a config -> a model class.

A model class registers itself under one or more names::

    @MODELS.register("bpr_mf")
    class BPRMF(EmbeddingRecommender): ...

and a task builds it with :func:`build_model`, which splits the constructor's
arguments in two:

* **hyperparameters** from the config (``model.params``): checked against the
  constructor's signature, so an unknown key fails with the nearest valid one
  and a value of the wrong type names the key;
* **context** from the task (``num_users``, ``num_items``, ``train_edges``,
  ``num_entities``, ...): passed only when the constructor accepts it, so one
  task can serve models that need different parts of the data. Context can not
  be set from a config (``model.params.num_users`` is an error).
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Mapping
from typing import Any, Union

from torch import nn

from graphlearn.errors import ConfigError
from graphlearn.registry import Registry, did_you_mean

__all__ = ["MODELS", "build_model", "list_models", "model_hyperparameters"]

#: Every registered model class, by name (``list_models()`` lists them).
MODELS: Registry[type[nn.Module]] = Registry("model")


def list_models() -> list[str]:
    """The registered model names."""
    import graphlearn.models  # noqa: F401  (registers the built-in models)

    return MODELS.names()


def _parameters(cls: type) -> dict[str, inspect.Parameter]:
    params = inspect.signature(cls.__init__).parameters
    return {name: p for name, p in params.items() if name != "self"
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def model_hyperparameters(name: str, context: tuple[str, ...] = ()) -> dict[str, Any]:
    """The hyperparameters of model ``name`` that a config may set, with their defaults
    (``inspect.Parameter.empty`` when required); ``context`` names are left out."""
    import graphlearn.models  # noqa: F401

    cls = MODELS.get(name)
    return {k: p.default for k, p in _parameters(cls).items() if k not in context}


def _type_ok(value: Any, annotation: Any) -> bool:
    """Whether ``value`` fits a simple annotation (``int``, ``float``, ``bool``, ``str``,
    their unions with ``None``, ``Literal``); other annotations are not checked."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    return True


def build_model(name: str, params: Mapping[str, Any] | None = None,
                **context: Any) -> nn.Module:
    """Build the registered model ``name``.

    Args:
        name: the registered name (``cfg.model.name``; case, ``-`` and ``_`` ignored).
        params: hyperparameters (``cfg.model.params``).
        **context: what the task knows about the data; each entry is passed only
            when the constructor has a parameter of that name.

    Raises:
        ConfigError: unknown model (listing the valid ones), an unknown or
            context-only key in ``params`` (with the nearest valid key), a missing
            required hyperparameter, a value of the wrong type, or a value the
            constructor rejects (its ``ValueError`` message, naming the model).
    """
    import graphlearn.models  # noqa: F401

    cls = MODELS.get(name)
    params = dict(params or {})
    signature = _parameters(cls)
    hints = typing.get_type_hints(cls.__init__)
    settable = [k for k in signature if k not in context]
    for key, value in params.items():
        full = f"model.params.{key}"
        if key in context:
            raise ConfigError(f"{full} is set by the task from the data for model {name!r}; "
                              f"remove it")
        if key not in signature:
            raise ConfigError(f"unknown key {full!r} for model {name!r}"
                              f"{did_you_mean(key, settable)} (valid: {', '.join(settable)})")
        annotation = hints.get(key, signature[key].annotation)
        if not _type_ok(value, annotation):
            expected = getattr(annotation, "__name__", str(annotation))
            raise ConfigError(f"invalid {full!r} for model {name!r}: expected {expected}, "
                              f"got {value!r} ({type(value).__name__})")
    missing = [k for k, p in signature.items() if p.default is inspect.Parameter.empty
               and k not in params and k not in context]
    if missing:
        raise ConfigError(f"model {name!r} needs {missing[0]!r}: set model.params.{missing[0]}"
                          f" (or, for data such as a graph, use a task that provides it)")
    kwargs = {k: v for k, v in context.items() if k in signature}
    kwargs.update(params)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"model {name!r}: {error}") from None
