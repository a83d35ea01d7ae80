"""Turn a system's :class:`~hdbench.system.Activity` into the matrices the metrics compare.

- :func:`tuning_matrices`: mean rate per head-direction bin (optionally × angular-velocity
  bin), computed separately on two independent trial splits (even / odd trials) — the fit and
  test data of cross-validated metrics, and the basis of noise ceilings.
- :func:`population_trajectories`: time-resolved rates and AV for the dynamics metric.
- :func:`align_dimensions`: bring systems to a common dimension, by top-k PCA (fitted on the
  first split only, so held-out splits stay held out) or by zero padding — an explicit choice,
  because the shape metrics with ``alpha < 1`` penalise dimension mismatch (zero padding
  inflates the CCA distance even between perfectly related subspaces).

Compare systems on the *same* trials (same task seed): conditions are then defined by the same
heading and AV samples for every system.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hdbench.errors import HdbenchError
from hdbench.metrics._validate import as_array, check_choice
from hdbench.system import Activity

ALIGN_METHODS = ("pca", "zero_pad")


@dataclass(frozen=True)
class ConditionMatrices:
    """Trial-split tuning matrices of one system.

    Attributes
    ----------
    splits : float64 ``[2, conditions, units]``
        Mean rate per condition on even (``splits[0]``) and odd (``splits[1]``) trials.
    counts : int ``[2, conditions]``
        Time samples behind each mean.
    hd_edges : float64 ``[hd_bins + 1]``
        Heading bin edges in rad, 0 … 2π.
    av_edges : float64 ``[av_bins + 1]`` or None
        AV bin edges in rad/step (AV > 0 = CCW); None for HD-only conditions.

    Conditions are ordered HD-major: condition ``h * av_bins + a`` is HD bin h, AV bin a.
    """

    splits: np.ndarray
    counts: np.ndarray
    hd_edges: np.ndarray
    av_edges: np.ndarray | None

    @property
    def mean(self) -> np.ndarray:
        """``[conditions, units]`` tuning over all trials (the splits weighted by counts)."""
        weights = self.counts[:, :, None]
        return (self.splits * weights).sum(axis=0) / weights.sum(axis=0)

    @property
    def hd_centers(self) -> np.ndarray:
        """Heading bin centres in rad."""
        return 0.5 * (self.hd_edges[:-1] + self.hd_edges[1:])


def _av_edges(av_bins, av: np.ndarray) -> np.ndarray:
    if isinstance(av_bins, (int, np.integer)) and not isinstance(av_bins, bool):
        if av_bins < 1:
            raise HdbenchError(f"av_bins must be >= 1; got {av_bins}")
        edges = np.quantile(av, np.linspace(0.0, 1.0, int(av_bins) + 1))
        if np.any(np.diff(edges) <= 0):
            raise HdbenchError(
                f"{av_bins} equal-count AV bins collapse (many identical AV values, e.g. "
                "zero-AV stretches); pass fewer bins or explicit edges"
            )
        return edges
    edges = as_array(av_bins, "av_bins (an int or bin edges)", 1)
    if edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise HdbenchError("AV bin edges must be >= 2 strictly increasing values in rad/step")
    return edges


def _bin(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index of each value, -1 outside [edges[0], edges[-1]] (last edge inclusive)."""
    idx = np.searchsorted(edges, values, side="right") - 1
    idx[values == edges[-1]] = edges.size - 2
    idx[(values < edges[0]) | (values > edges[-1])] = -1
    return idx


def tuning_matrices(activity: Activity, n_hd_bins: int = 72, av_bins=None, *,
                    skip_steps: int = 0) -> ConditionMatrices:
    """Mean rate of every unit per heading (× AV) bin on two independent trial splits.

    Parameters
    ----------
    activity : Activity
        Needs ``heading`` (and ``av`` for AV bins) and at least 2 trials.
    n_hd_bins : int
        Equal-width heading bins over [0, 2π).
    av_bins : None, int or array of edges
        None: heading only. An int: that many equal-count bins between the smallest and largest
        AV of this activity (the same for every system run on the same trials). An array:
        explicit edges in rad/step; samples outside them are dropped.
    skip_steps : int
        Leading steps of every trial to leave out (e.g. the task's cue steps).

    Returns
    -------
    ConditionMatrices

    Raises
    ------
    HdbenchError
        If the heading (or AV) is missing, there are fewer than 2 trials, or a condition has no
        samples in a split (use fewer bins or more trials).
    """
    if activity.heading is None:
        raise HdbenchError("activity has no true heading; simulate it from task Trials")
    if av_bins is not None and activity.av is None:
        raise HdbenchError("AV bins need activity.av; simulate from task Trials")
    if isinstance(n_hd_bins, bool) or not isinstance(n_hd_bins, (int, np.integer)) \
            or n_hd_bins < 2:
        raise HdbenchError(f"n_hd_bins must be an integer >= 2; got {n_hd_bins!r}")
    rates = as_array(activity.rates, "activity.rates", 3)
    trials, steps, units = rates.shape
    if trials < 2:
        raise HdbenchError(f"two trial splits need at least 2 trials; got {trials}")
    if not 0 <= skip_steps < steps:
        raise HdbenchError(f"skip_steps must lie in [0, {steps}); got {skip_steps}")
    heading = np.mod(as_array(activity.heading, "activity.heading", 2), 2.0 * np.pi)
    rates, heading = rates[:, skip_steps:], heading[:, skip_steps:]
    hd_edges = np.linspace(0.0, 2.0 * np.pi, int(n_hd_bins) + 1)
    condition = _bin(heading, hd_edges)
    av_edges, n_av = None, 1
    if av_bins is not None:
        av = as_array(activity.av, "activity.av", 2)[:, skip_steps:]
        av_edges = _av_edges(av_bins, av)
        n_av = av_edges.size - 1
        av_idx = _bin(av, av_edges)
        condition = np.where(av_idx >= 0, condition * n_av + av_idx, -1)
    n_conditions = n_hd_bins * n_av
    splits = np.zeros((2, n_conditions, units))
    counts = np.zeros((2, n_conditions), dtype=np.int64)
    for s in range(2):
        cond = condition[s::2].ravel()
        keep = cond >= 0
        counts[s] = np.bincount(cond[keep], minlength=n_conditions)
        if np.any(counts[s] == 0):
            empty = np.flatnonzero(counts[s] == 0)
            raise HdbenchError(
                f"{empty.size} condition(s) have no samples in trial split {s} (first: "
                f"{empty[:5].tolist()}); use fewer bins or more/longer trials"
            )
        sums = np.zeros((n_conditions, units))
        np.add.at(sums, cond[keep], rates[s::2].reshape(-1, units)[keep])
        splits[s] = sums / counts[s][:, None]
    return ConditionMatrices(splits=splits, counts=counts, hd_edges=hd_edges, av_edges=av_edges)


def population_trajectories(activity: Activity, *, skip_steps: int = 0
                            ) -> tuple[np.ndarray, np.ndarray | None]:
    """Time-resolved population activity for :func:`hdbench.metrics.dynamical_similarity`.

    Returns
    -------
    states : float64 ``[trials, time, units]``
        Rates after ``skip_steps``.
    av : float64 ``[trials, time]`` or None
        The matching AV in rad/step, the natural control input.
    """
    rates = as_array(activity.rates, "activity.rates", 3)
    if not 0 <= skip_steps < rates.shape[1]:
        raise HdbenchError(f"skip_steps must lie in [0, {rates.shape[1]}); got {skip_steps}")
    av = None
    if activity.av is not None:
        av = as_array(activity.av, "activity.av", 2)[:, skip_steps:]
    return rates[:, skip_steps:], av


def _pca_project(X: np.ndarray, k: int, name: str) -> np.ndarray:
    """Project every split of ``X [splits, conditions, units]`` on the top-k PCs of split 0."""
    fit = X[0]
    if k > min(fit.shape[0] - 1, fit.shape[1]):
        raise HdbenchError(
            f"{name}: k={k} PCs need more than k units and k + 1 conditions; got {fit.shape}"
        )
    mean = fit.mean(axis=0)
    _, _, Vt = np.linalg.svd(fit - mean, full_matrices=False)
    basis = Vt[:k].T
    # sign convention: each PC's largest loading is positive (reproducible across LAPACKs)
    basis *= np.sign(basis[np.argmax(np.abs(basis), axis=0), np.arange(k)])
    return (X - mean) @ basis


def align_dimensions(systems: Sequence, method: str = "pca", k: int | None = None
                     ) -> list[np.ndarray]:
    """Bring several systems to a common number of dimensions.

    Parameters
    ----------
    systems : list of arrays ``[conditions, units]`` or ``[splits, conditions, units]``
        Unit counts may differ; :class:`ConditionMatrices` ``.splits`` fit here.
    method : {"pca", "zero_pad"}
        ``"pca"``: centre on, and project onto the top-k principal components of, each system's
        first split (its fit data); other splits are projected with the same mean and basis.
        ``"zero_pad"``: append zero units up to the largest unit count (``k`` must be None).
    k : int
        Number of PCs, required by ``"pca"``; at most units and conditions - 1 of each system.

    Returns
    -------
    list of float64 arrays with the input shapes, the last axis now k (or the largest count)
    """
    check_choice(method, "alignment method", ALIGN_METHODS)
    if isinstance(systems, (str, bytes)) or not isinstance(systems, Sequence) or not systems:
        raise HdbenchError("systems must be a non-empty list of arrays")
    arrays = [as_array(X, f"systems[{i}]", (2, 3)) for i, X in enumerate(systems)]
    if method == "zero_pad":
        if k is not None:
            raise HdbenchError("zero_pad pads to the largest unit count; pass k=None")
        width = max(X.shape[-1] for X in arrays)
        return [np.concatenate([X, np.zeros(X.shape[:-1] + (width - X.shape[-1],))], axis=-1)
                for X in arrays]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise HdbenchError(f"method='pca' needs a positive integer k; got {k!r}")
    out = []
    for i, X in enumerate(arrays):
        projected = _pca_project(X if X.ndim == 3 else X[None], int(k), f"systems[{i}]")
        out.append(projected if X.ndim == 3 else projected[0])
    return out
