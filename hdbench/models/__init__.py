"""Trainable systems and their registry: ``build("ctrnn", n_units=100, ...)``.

Installed packages add models through the entry-point group ``hdbench.models``::

    [project.entry-points."hdbench.models"]
    mymodel = "mypackage.models:make_model"

``make_model(**options)`` returns any object with the system interface
(:class:`hdbench.system.System`). Entry points are looked up when :func:`available` or
:func:`build` is called, not at import, and only the one being built is imported. A built-in
name always wins over an entry point of the same name.
"""

from __future__ import annotations

import importlib.metadata
import warnings

from hdbench.errors import HdbenchError
from hdbench.models.base import TrainableSystem
from hdbench.models.ctrnn import CTRNN
from hdbench.models.gated import GatedRNN

ENTRY_POINT_GROUP = "hdbench.models"

_REGISTRY = {
    "ctrnn": CTRNN,
    "gru": lambda **cfg: GatedRNN(kind="gru", **cfg),
    "lstm": lambda **cfg: GatedRNN(kind="lstm", **cfg),
    "vanilla": lambda **cfg: GatedRNN(kind="vanilla", **cfg),
}


def plugins() -> dict:
    """``{name: EntryPoint}`` of the installed ``hdbench.models`` plugins (built-ins excluded)."""
    found = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _REGISTRY:
            warnings.warn(f"ignoring the {ENTRY_POINT_GROUP} entry point {ep.name!r} "
                          f"({ep.value}): it shadows the built-in model", stacklevel=3)
            continue
        found.setdefault(ep.name, ep)
    return found


def available() -> list[str]:
    """Names accepted by :func:`build`: the built-in models and the installed plugins."""
    return sorted({*_REGISTRY, *plugins()})


def _plugin_factory(ep):
    try:
        factory = ep.load()
    except Exception as err:  # a broken plugin must not look like an hdbench bug
        raise HdbenchError(f"cannot load model {ep.name!r} from entry point {ep.value!r}: "
                           f"{type(err).__name__}: {err}") from None
    if not callable(factory):
        raise HdbenchError(f"model entry point {ep.name!r} ({ep.value}) is not callable")
    return factory


def build(name: str, **config):
    """Build a model by registry name; unknown names or options give a clear error.

    Built-in models are :class:`TrainableSystem` instances; a plugin's factory may return any
    object with the system interface (it must at least have a callable ``simulate``).
    """
    factory = _REGISTRY.get(name)
    plugin = factory is None
    if plugin:
        ep = plugins().get(name)
        if ep is None:
            raise HdbenchError(f"unknown model {name!r}; known models: {', '.join(available())}")
        factory = _plugin_factory(ep)
    try:
        system = factory(**config)
    except TypeError as err:
        raise HdbenchError(f"bad options for model {name!r}: {err}") from None
    if plugin and not callable(getattr(system, "simulate", None)):
        raise HdbenchError(f"model {name!r} ({ep.value}) returned a {type(system).__name__} "
                           "without a simulate(inputs) method; see hdbench.system.System")
    return system


__all__ = ["CTRNN", "ENTRY_POINT_GROUP", "GatedRNN", "TrainableSystem", "available", "build",
           "plugins"]
