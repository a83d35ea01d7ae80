"""The registry of reference circuits: names, builders, versions."""

from __future__ import annotations

import importlib

from hdbench.errors import HdbenchError

# name -> module defining the circuit class and its VERSION
_MODULES = {"rodent": ("reference_circuits.rodent", "RodentCircuit"),
            "fly": ("reference_circuits.fly", "FlyCircuit")}


def available() -> list[str]:
    """Names accepted by :func:`load`."""
    return sorted(_MODULES)


def _module(name: str):
    if name not in _MODULES:
        known = ", ".join(available()) or "(none registered yet)"
        raise HdbenchError(f"unknown reference circuit {name!r}; known circuits: {known}")
    return importlib.import_module(_MODULES[name][0])


def load(name: str, instance_seed: int = 0, **options):
    """Build the circuit ``name``; an unknown name lists the known ones."""
    circuit_class = getattr(_module(name), _MODULES[name][1])
    return circuit_class(instance_seed=instance_seed, **options)


def version(name: str) -> int:
    """The circuit's ``VERSION`` (bumped whenever its simulations change): part of the key of
    every cached score that involves it."""
    return int(getattr(_module(name), "VERSION", 1))
