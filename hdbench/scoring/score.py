"""Scores: a raw measurement placed between a floor and a ceiling, and their aggregates.

Normalisation (the one formula every leaderboard number goes through)::

    normalised = (raw - floor) / (ceiling - floor)

- ``ceiling`` is the same measurement for the reference against an independent instance of
  itself; ``floor`` is the measurement for an untrained network of the default architecture.
- The formula is the same for similarities (higher is better, ceiling > floor) and for distances
  or errors (lower is better, ceiling < floor): the sign of ``ceiling - floor`` makes it
  direction-aware, so 1 always means "as good as the reference" and 0 "as good as an untrained
  network", whichever way the raw measurement points.
- The normalised value is stored **unclipped** (below 0: worse than untrained; above 1: closer
  to the reference than a second instance of the reference is). Only :meth:`Score.display`
  clips it to [0, 1], marking clipped values with ``*``.
- The error is scaled the same way: ``error = raw_error / |ceiling - floor|``, where
  ``raw_error`` is the standard error of the mean over seeds (``std(ddof=1) / sqrt(n)``; NaN for
  a single seed). The uncertainty of the ceiling and floor themselves is not propagated.
- Degenerate case: if ``ceiling == floor`` (or either is not finite) the benchmark cannot tell a
  model from an untrained one, and :func:`normalise` raises :class:`DegenerateScoreError`. The
  leaderboard reports such a benchmark with a NaN normalised value and a note, and leaves it out
  of every aggregate (its coverage shows it missing). A raw value that is not finite (e.g. a
  diverged model) likewise gives a NaN normalised value that aggregates leave out.

Aggregation: a family score (task, tuning, representation, connectivity, dynamics) and the
overall score are the **unweighted mean of the normalised leaf scores** that exist, reported
with their coverage ``n / n_total`` (leaf benchmarks that contributed / leaf benchmarks defined).
A missing leaf is *not* counted as 0. The error of a mean is ``sqrt(sum(error_i²)) / n``
(independent leaves), NaN when any contributing error is unknown.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from hdbench.errors import HdbenchError


class DegenerateScoreError(HdbenchError):
    """The ceiling equals the floor (or is not finite): the benchmark cannot be normalised."""


def normalise(raw: float, ceiling: float, floor: float) -> float:
    """``(raw - floor) / (ceiling - floor)``: 1 at the ceiling, 0 at the floor, unclipped.

    Raises
    ------
    DegenerateScoreError
        If ``ceiling == floor`` or either is NaN or infinite.
    """
    ceiling, floor = float(ceiling), float(floor)
    if not (math.isfinite(ceiling) and math.isfinite(floor)):
        raise DegenerateScoreError(
            f"ceiling and floor must be finite to normalise; got ceiling={ceiling}, floor={floor}"
        )
    if ceiling == floor:
        raise DegenerateScoreError(
            f"ceiling equals floor ({ceiling}): the benchmark does not separate the reference "
            "from an untrained network, so it cannot be normalised"
        )
    return (float(raw) - floor) / (ceiling - floor) + 0.0  # + 0.0: no negative zero


def sem(values: Sequence[float]) -> float:
    """Standard error of the mean, ``std(ddof=1) / sqrt(n)``; NaN for fewer than 2 values."""
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2:
        return math.nan
    return float(values.std(ddof=1) / math.sqrt(values.size))


@dataclass(frozen=True)
class Score:
    """One benchmark's result for one model (over its seeds); see the module doc for formulas.

    Parameters
    ----------
    raw : float
        The raw measurement (mean over seeds).
    ceiling, floor : float
        The reference-vs-itself and untrained-network values of the same measurement.
    higher_is_better : bool
        True for similarities, False for distances and errors. Only used to flag an *inverted*
        benchmark (floor beyond ceiling); the normalisation itself needs no direction.
    raw_error : float
        Uncertainty of ``raw`` (SEM over seeds), NaN if unknown.
    per_seed : tuple of float
        Raw values of the individual seeds.

    Attributes
    ----------
    normalised : float
        ``(raw - floor) / (ceiling - floor)``, unclipped.
    error : float
        ``raw_error / |ceiling - floor|``.
    """

    raw: float
    ceiling: float
    floor: float
    higher_is_better: bool
    raw_error: float = math.nan
    per_seed: tuple[float, ...] = ()
    normalised: float = field(init=False)
    error: float = field(init=False)

    def __post_init__(self):
        for name in ("raw", "ceiling", "floor", "raw_error"):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "per_seed", tuple(float(v) for v in self.per_seed))
        object.__setattr__(self, "normalised", normalise(self.raw, self.ceiling, self.floor))
        object.__setattr__(self, "error", self.raw_error / abs(self.ceiling - self.floor))

    @classmethod
    def from_seeds(cls, values: Iterable[float], ceiling: float, floor: float,
                   higher_is_better: bool) -> Score:
        """Score of a model from its per-seed raw values: mean and SEM over seeds."""
        values = tuple(float(v) for v in values)
        if not values:
            raise HdbenchError("a score needs at least one per-seed value")
        return cls(raw=float(np.mean(values)), ceiling=ceiling, floor=floor,
                   higher_is_better=higher_is_better, raw_error=sem(values), per_seed=values)

    @property
    def n_seeds(self) -> int:
        return len(self.per_seed) if self.per_seed else 1

    @property
    def inverted(self) -> bool:
        """True when the floor beats the ceiling in the benchmark's own direction."""
        return (self.ceiling < self.floor) if self.higher_is_better else \
            (self.ceiling > self.floor)

    def clipped(self) -> float:
        """The normalised value clipped to [0, 1] (display only; NaN stays NaN)."""
        return float(np.clip(self.normalised, 0.0, 1.0))

    def display(self, digits: int = 2) -> str:
        """E.g. ``"0.87 ± 0.03"``; clipped to [0, 1] with ``*`` marking a clipped value."""
        return format_score(self.normalised, self.error, digits=digits)

    def to_dict(self) -> dict:
        return {"raw": self.raw, "ceiling": self.ceiling, "floor": self.floor,
                "normalised": self.normalised, "error": self.error, "raw_error": self.raw_error,
                "n_seeds": self.n_seeds, "per_seed": list(self.per_seed),
                "higher_is_better": self.higher_is_better}


def format_score(value: float, error: float = math.nan, digits: int = 2) -> str:
    """Display form of a normalised value: clipped to [0, 1], ``*`` if clipped, ``± error``."""
    if not math.isfinite(value):
        return "n/a"
    shown = min(max(value, 0.0), 1.0)
    text = f"{shown:.{digits}f}" + ("*" if shown != value else "")
    if math.isfinite(error):
        text += f" ± {error:.{digits}f}"
    return text


@dataclass(frozen=True)
class Aggregate:
    """Mean of normalised leaf scores with its error and coverage (``n`` of ``n_total``)."""

    mean: float
    error: float
    n: int
    n_total: int

    @property
    def coverage(self) -> str:
        return f"{self.n}/{self.n_total}"

    def display(self, digits: int = 2) -> str:
        return f"{format_score(self.mean, self.error, digits)} ({self.coverage})"


def aggregate(values: Iterable[float], errors: Iterable[float] | None = None,
              n_total: int | None = None) -> Aggregate:
    """Unweighted mean of the finite normalised ``values``, with coverage.

    Parameters
    ----------
    values : normalised leaf scores; NaN entries (missing or degenerate) are left out.
    errors : their errors (same order), or None.
    n_total : how many leaf benchmarks exist (default: ``len(values)``).
    """
    values = np.asarray(list(values), dtype=np.float64)
    errors = np.full(values.shape, np.nan) if errors is None else \
        np.asarray(list(errors), dtype=np.float64)
    if errors.shape != values.shape:
        raise HdbenchError(f"got {values.size} values but {errors.size} errors")
    n_total = values.size if n_total is None else int(n_total)
    keep = np.isfinite(values)
    n = int(keep.sum())
    if n > n_total:
        raise HdbenchError(f"{n} leaf scores contributed but only {n_total} leaves exist")
    if n == 0:
        return Aggregate(math.nan, math.nan, 0, n_total)
    kept_errors = errors[keep]
    error = float(np.sqrt((kept_errors**2).sum()) / n) if np.all(np.isfinite(kept_errors)) \
        else math.nan
    return Aggregate(float(values[keep].mean()), error, n, n_total)
