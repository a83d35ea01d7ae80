"""Trainable systems and their registry: ``build("ctrnn", n_units=100, ...)``."""

from __future__ import annotations

from hdbench.errors import HdbenchError
from hdbench.models.base import TrainableSystem
from hdbench.models.ctrnn import CTRNN
from hdbench.models.gated import GatedRNN

_REGISTRY = {
    "ctrnn": CTRNN,
    "gru": lambda **cfg: GatedRNN(kind="gru", **cfg),
    "lstm": lambda **cfg: GatedRNN(kind="lstm", **cfg),
    "vanilla": lambda **cfg: GatedRNN(kind="vanilla", **cfg),
}


def available() -> list[str]:
    """Names accepted by :func:`build`."""
    return sorted(_REGISTRY)


def build(name: str, **config) -> TrainableSystem:
    """Build a model by registry name; unknown names or options give a clear error."""
    if name not in _REGISTRY:
        raise HdbenchError(f"unknown model {name!r}; known models: {', '.join(available())}")
    try:
        return _REGISTRY[name](**config)
    except TypeError as err:
        raise HdbenchError(f"bad options for model {name!r}: {err}") from None


__all__ = ["CTRNN", "GatedRNN", "TrainableSystem", "available", "build"]
