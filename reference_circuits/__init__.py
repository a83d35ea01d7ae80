"""Hand-built ring-attractor reference circuits: the "biology" every model is scored against.

``available()`` lists circuits; ``load(name, instance_seed=0, **options)`` builds one. Options are
fields of the circuit's config (:class:`~reference_circuits.rodent.RodentConfig`,
:class:`~reference_circuits.fly.FlyConfig`); ``instance_seed`` draws an independent instance
with its own cell-to-cell variability (gains, tuning widths, AV sensitivities: see the circuits'
modules) and its own noise. ``degrade(name_or_circuit, kind, level, seed)`` returns a copy with a
graded, known degradation (:mod:`reference_circuits.degradations`).
"""

from __future__ import annotations

from hdbench.errors import HdbenchError


def _rodent(**kwargs):
    from reference_circuits.rodent import RodentCircuit

    return RodentCircuit(**kwargs)


def _fly(**kwargs):
    from reference_circuits.fly import FlyCircuit

    return FlyCircuit(**kwargs)


_REGISTRY: dict = {"rodent": _rodent, "fly": _fly}


def available() -> list[str]:
    """Names accepted by :func:`load`."""
    return sorted(_REGISTRY)


def load(name: str, instance_seed: int = 0, **options):
    """Build the circuit ``name``; an unknown name lists the known ones."""
    if name not in _REGISTRY:
        known = ", ".join(available()) or "(none registered yet)"
        raise HdbenchError(f"unknown reference circuit {name!r}; known circuits: {known}")
    return _REGISTRY[name](instance_seed=instance_seed, **options)


_MODULES = {"rodent": "reference_circuits.rodent", "fly": "reference_circuits.fly"}


def version(name: str) -> int:
    """The circuit's ``VERSION`` (bumped whenever its simulations change): part of the key of
    every cached score that involves it."""
    import importlib

    if name not in _REGISTRY:
        known = ", ".join(available()) or "(none registered yet)"
        raise HdbenchError(f"unknown reference circuit {name!r}; known circuits: {known}")
    return int(getattr(importlib.import_module(_MODULES[name]), "VERSION", 1))


def degrade(system_or_name, kind: str, level: float, seed: int = 0,
            instance_seed: int | None = None):
    """A reference circuit degraded by ``kind`` at ``level``
    (:func:`reference_circuits.degradations.degrade`; kinds in
    :data:`reference_circuits.degradations.KINDS`)."""
    from reference_circuits.degradations import degrade as _degrade

    return _degrade(system_or_name, kind, level, seed=seed, instance_seed=instance_seed)
