"""Hand-built ring-attractor reference circuits: the "biology" every model is scored against.

``available()`` lists circuits; ``load(name, instance_seed=0, **options)`` builds one. Options are
fields of the circuit's config (:class:`~reference_circuits.rodent.RodentConfig`,
:class:`~reference_circuits.fly.FlyConfig`); ``instance_seed`` draws an independent instance
with its own cell-to-cell variability (gains, tuning widths, AV sensitivities: see the circuits'
modules) and its own noise. ``degrade(name_or_circuit, kind, level, seed)`` returns a copy with a
graded, known degradation (:mod:`reference_circuits.degradations`).
"""

from __future__ import annotations

from reference_circuits.registry import available, load, version

__all__ = ["available", "degrade", "load", "version"]


def degrade(system_or_name, kind: str, level: float, seed: int = 0,
            instance_seed: int | None = None):
    """A reference circuit degraded by ``kind`` at ``level``
    (:func:`reference_circuits.degradations.degrade`; kinds in
    :data:`reference_circuits.degradations.KINDS`)."""
    from reference_circuits.degradations import degrade as _degrade

    return _degrade(system_or_name, kind, level, seed=seed, instance_seed=instance_seed)
