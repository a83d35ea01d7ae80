"""Hand-built ring-attractor reference circuits: the "biology" every model is scored against.

``available()`` lists circuits; ``load(name, instance_seed=0, **options)`` builds one.
"""

from __future__ import annotations

from hdbench.errors import HdbenchError

_REGISTRY: dict = {}


def available() -> list[str]:
    """Names accepted by :func:`load`."""
    return sorted(_REGISTRY)


def load(name: str, instance_seed: int = 0, **options):
    """Build the circuit ``name``; an unknown name lists the known ones."""
    if name not in _REGISTRY:
        known = ", ".join(available()) or "(none registered yet)"
        raise HdbenchError(f"unknown reference circuit {name!r}; known circuits: {known}")
    return _REGISTRY[name](instance_seed=instance_seed, **options)
