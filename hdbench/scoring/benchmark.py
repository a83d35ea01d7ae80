"""Benchmarks: (reference circuit, measurement, comparison) with a version, and their registry.

A benchmark's id is ``<reference>.<family>.<name>``, e.g. ``fly.representation.procrustes`` or
``rodent.task.test-ne``. Its ``version`` is an integer bumped whenever its scores would change
(a new metric, other trials, a fixed bug): stored scores are keyed by it, so an old score is
never mixed with a new one.

A benchmark registered with ``reference=None`` is *generic*: it applies to every reference
circuit and is instantiated per reference by :func:`all_benchmarks` and :func:`get`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from hdbench.errors import HdbenchError

FAMILIES = ("task", "tuning", "representation", "connectivity", "dynamics", "properties")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass(frozen=True)
class Benchmark:
    """One leaf of the leaderboard.

    Parameters
    ----------
    family : str
        The parent in the leaderboard tree, one of :data:`FAMILIES`.
    name : str
        Short name, unique within (reference, family): lowercase letters, digits, ``-``, ``_``.
    score_fn : callable
        ``score_fn(subject_bundle, reference_bundle) -> float`` or ``(value, error)``. Must be a
        module-level function (jobs are pickled to worker processes).
    higher_is_better : bool
        True for similarities, False for distances and errors.
    version : int
        Bump whenever the scores would change.
    reference : str or None
        The reference circuit name, or None for a generic benchmark.
    measurement, comparison : str
        What is measured on each system, and how the two are compared (one line each).
    citation : str
        Where the measurement comes from.
    published, spread : float or None
        For a benchmark against a published measurement (the ``properties`` family): the
        published value and its spread, in ``unit``.
    unit : str
        Unit of ``published`` and ``spread`` (°, ms, °/s; "" for a fraction).
    confidence : str
        Confidence tag of the published fact ([P] primary paper, [S] secondary summary, ...).
    data_ceiling : float or None
        The raw value that reflects the data's own variability (e.g. the distance of a sample
        of the published distribution to it); used instead of the reference-against-itself
        ceiling when set. See :mod:`hdbench.scoring.property_benchmarks`.
    """

    family: str
    name: str
    score_fn: Callable
    higher_is_better: bool
    version: int = 1
    reference: str | None = None
    measurement: str = ""
    comparison: str = ""
    citation: str = ""
    published: float | None = None
    spread: float | None = None
    unit: str = ""
    confidence: str = ""
    data_ceiling: float | None = None

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise HdbenchError(f"unknown benchmark family {self.family!r}; "
                               f"known: {', '.join(FAMILIES)}")
        if not _NAME.match(self.name):
            raise HdbenchError(f"benchmark name {self.name!r} must match {_NAME.pattern}")
        if self.reference is not None and (not self.reference or "." in self.reference):
            raise HdbenchError(f"reference name {self.reference!r} must be non-empty, no dots")
        if isinstance(self.version, bool) or not isinstance(self.version, int) \
                or self.version < 1:
            raise HdbenchError(f"benchmark version must be a positive integer; "
                               f"got {self.version!r}")
        if not callable(self.score_fn):
            raise HdbenchError(f"score_fn of {self.name!r} is not callable")
        for name in ("published", "spread", "data_ceiling"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, float | int)
                                      or not math.isfinite(value)):
                raise HdbenchError(f"{name} of {self.name!r} must be a finite number or None; "
                                   f"got {value!r}")
        if (self.published is None) != (self.spread is None):
            raise HdbenchError(f"benchmark {self.name!r}: give both published and spread, or "
                               "neither")
        if self.spread is not None and not self.spread > 0:
            raise HdbenchError(f"spread of {self.name!r} must be > 0; got {self.spread}")

    @property
    def id(self) -> str:
        return f"{self.reference or '*'}.{self.family}.{self.name}"

    @property
    def parent(self) -> str:
        return self.family

    def for_reference(self, reference: str) -> Benchmark:
        """This (generic) benchmark bound to ``reference``."""
        if self.reference not in (None, reference):
            raise HdbenchError(f"benchmark {self.id} belongs to reference {self.reference!r}")
        return dataclasses.replace(self, reference=reference)

    def __call__(self, subject, reference) -> tuple[float, float]:
        """``(value, error)`` of the subject bundle against the reference bundle."""
        result = self.score_fn(subject, reference)
        value, error = result if isinstance(result, tuple) else (result, math.nan)
        return float(value), float(error)

    def describe(self) -> dict:
        """JSON-ready description (stored with every score)."""
        out = {"id": self.id, "reference": self.reference, "family": self.family,
               "name": self.name, "version": self.version,
               "higher_is_better": self.higher_is_better, "measurement": self.measurement,
               "comparison": self.comparison, "citation": self.citation}
        if self.published is not None or self.data_ceiling is not None:  # others unchanged
            out.update(published=self.published, spread=self.spread, unit=self.unit,
                       confidence=self.confidence, data_ceiling=self.data_ceiling)
        return out


_REGISTRY: dict[str, Benchmark] = {}


def register(benchmark: Benchmark, replace: bool = False) -> Benchmark:
    """Add ``benchmark`` to the registry (``replace=True`` to overwrite an existing id)."""
    if benchmark.id in _REGISTRY and not replace:
        raise HdbenchError(f"benchmark {benchmark.id} is already registered")
    _REGISTRY[benchmark.id] = benchmark
    return benchmark


def unregister(benchmark_id: str) -> None:
    _REGISTRY.pop(benchmark_id, None)


def get(benchmark_id: str) -> Benchmark:
    """The benchmark ``<reference>.<family>.<name>`` (generic ones bound to the reference)."""
    parts = benchmark_id.split(".")
    if len(parts) != 3:
        raise HdbenchError(f"benchmark ids look like 'fly.task.test-ne'; got {benchmark_id!r}")
    if benchmark_id in _REGISTRY:
        return _REGISTRY[benchmark_id]
    generic = _REGISTRY.get(f"*.{parts[1]}.{parts[2]}")
    if generic is None:
        known = ", ".join(sorted(_REGISTRY)) or "(none)"
        raise HdbenchError(f"unknown benchmark {benchmark_id!r}; registered: {known}")
    return generic.for_reference(parts[0])


def all_benchmarks(references: Iterable[str] | None = None, family: str | None = None,
                   ) -> list[Benchmark]:
    """Every benchmark for ``references`` (default: all available reference circuits).

    Generic benchmarks are bound to each reference; reference-specific ones are included when
    their reference is listed. Sorted by id; ``family`` filters.
    """
    if references is None:
        import reference_circuits

        references = reference_circuits.available()
    if family is not None and family not in FAMILIES:
        raise HdbenchError(f"unknown benchmark family {family!r}; known: {', '.join(FAMILIES)}")
    found = {}
    for ref in references:
        for bench in _REGISTRY.values():
            if bench.reference in (None, ref) and family in (None, bench.family):
                bound = bench.for_reference(ref)
                found[bound.id] = bound
    return [found[k] for k in sorted(found)]
