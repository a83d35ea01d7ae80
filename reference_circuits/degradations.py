"""Graded degradations of a reference circuit: known, graded differences from the intact circuit.

A benchmark that measures brain-likeness should score a degraded copy of the reference lower the
more it is degraded ("grounding by design": Klabunde et al. 2024, ReSi). :func:`degrade` returns
a system with the interface of the circuit (``simulate``, ``recurrent_weights``, ``n_units``,
``cell_types``, ``task``, ``vector_field``, ``state_rates``) whose behaviour departs from the
intact instance by an amount set by ``level``; ``level = 0`` reproduces the intact instance
exactly. Kinds:

``shuffle-weights`` (level in [0, 1])
    A fraction ``level`` of the synapses is permuted: each cell's chosen inputs from a population
    pass their strengths on among themselves (:func:`shuffle_inputs`). The dynamics run on the
    shuffled W and :meth:`~DegradedCircuit.recurrent_weights` returns it. Permuting within a
    cell's inputs from one population keeps each population's sign (Dale's law), the
    feed-forward ADN readout feed-forward and every cell's total input from every population
    (so the circuit stays stable; permuting across cells let the fly's E-PG ↔ P-EN loop run
    away); it destroys the wiring's structure (ring kernels, offsets). The chosen sets of
    growing levels are nested. A continuous attractor does not survive it: 0.1 % of the rodent
    ring's synapses permuted already stops integration (see ``weight-noise``).
``weight-noise`` (level in [0, 2])
    Every synapse multiplied by its own log-normal factor exp(level·ε − level²/2), ε ~ N(0, 1)
    fixed by ``seed`` (the same ε at every level, so growing levels move W further along the
    same direction): sign, sparsity and mean strength kept, structure blurred. Unlike a
    permutation, which moves whole synapses (and stops the rodent ring from integrating at
    0.1 % of its weights permuted), this degrades the attractor gradually: the bump drifts
    ~1°/s at level 0.01 (rodent) and its decode error grows smoothly, 3° → 9° at 0.05.
``rate-noise`` (level >= 0)
    Independent Gaussian noise added to the reported rates, with SD ``level`` × the unit's
    rate SD over the simulated batch (level = 1/SNR in amplitude), from a fixed seed
    (``seed`` and the simulation seed). A recording degradation: the dynamics, W and the
    states are those of the intact circuit; the outputs are read from the noisy rates.
``tuning-scatter`` (level in [0, 1])
    Each reported unit is a blend of its own rate and that of a fixed random partner of the same
    population (a derangement): r'_i = (1 − level/2) r_i + (level/2) r_π(i), as when a
    recording merges two cells. Level 1 is an equal blend: tuning curves broadened or
    two-peaked, preferred directions scattered from the cells' wiring. (Mixing beyond one half
    would approach a relabelling of the units, which permutation-invariant metrics cannot see.)
    W and the states stay those of the intact cells; ``state_rates`` blends like the rates.
``heading-remap`` (level in [0, 1])
    A fraction ``level`` of the units (a fixed random set, nested across levels) each lose their
    map of heading: unit i's heading tuning curve f_i (its mean rate in each of
    :data:`REMAP_BINS` heading bins, measured on the simulated batch) is read through its own
    fixed random permutation π_i of the bins, r'_i(t) = [r_i(t) − f_i(b(t)) + f_i(π_i(b(t)))]₊,
    b(t) the bin of the true heading (of the intact decoded heading without trials). Each
    remapped unit keeps the values of its tuning curve (in another order) and its trial-to-trial
    and AV modulation, but the population's geometry over heading is no longer a ring: at level
    1 distinct headings are about equally far apart. Unlike ``tuning-scatter``, a linear blend
    of units that keeps the heading-averaged population a ring, and ``rate-noise``, which
    averages out of condition means, this changes what population-geometry metrics compare.
    A recording degradation: W, the states and ``state_rates`` are the intact circuit's.
``time-constants`` (level >= 0)
    Every time constant multiplied by (1 + level) (instantaneous relays stay relays): the same
    fixed points, slower dynamics; the AV calibration no longer holds, so the bump turns
    1 + level times too slowly.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import torch

from hdbench.errors import HdbenchError
from hdbench.system import Activity, Silence
from reference_circuits.base import ReferenceCircuit

KINDS = ("shuffle-weights", "weight-noise", "rate-noise", "tuning-scatter", "time-constants",
         "heading-remap")
_MAX_LEVEL = {"shuffle-weights": 1.0, "weight-noise": 2.0, "rate-noise": 100.0,
              "tuning-scatter": 1.0, "time-constants": 100.0, "heading-remap": 1.0}
_RECORDING = ("rate-noise", "tuning-scatter", "heading-remap")  # act on the reported rates only
REMAP_BINS = 36  # heading bins of ``heading-remap`` (10 degrees)
_STREAM = 103  # random streams of the degradations (circuits use 101, 102)


def degrade(system_or_name, kind: str, level: float, seed: int = 0,
            instance_seed: int | None = None) -> DegradedCircuit:
    """A copy of a reference circuit degraded by ``kind`` at ``level`` (module docstring).

    Parameters
    ----------
    system_or_name : ReferenceCircuit or str
        A circuit (e.g. from :func:`reference_circuits.load`, with any options) or a name from
        :func:`reference_circuits.available`.
    kind : str
        One of :data:`KINDS`.
    level : float
        Amount of degradation; 0 reproduces the intact circuit exactly.
    seed : int
        Seed of the degradation's random choices (which weights, partners, noise).
    instance_seed : int, optional
        Instance to load when a name is given (default 0); not allowed with a circuit.

    Returns
    -------
    DegradedCircuit
    """
    if isinstance(system_or_name, str):
        from reference_circuits.registry import load

        circuit = load(system_or_name, instance_seed=0 if instance_seed is None
                       else instance_seed)
    elif isinstance(system_or_name, ReferenceCircuit):
        if instance_seed is not None:
            raise HdbenchError("instance_seed is for a circuit given by name; this circuit is "
                               f"instance {system_or_name.instance_seed} already")
        circuit = system_or_name
    else:
        raise HdbenchError("degrade needs a reference circuit or its name; got "
                           f"{type(system_or_name).__name__}")
    if kind not in KINDS:
        raise HdbenchError(f"unknown degradation {kind!r}; known: {', '.join(KINDS)}")
    if isinstance(level, bool) or not isinstance(level, (int, float, np.integer, np.floating)) \
            or not 0.0 <= float(level) <= _MAX_LEVEL[kind]:
        raise HdbenchError(f"level of {kind!r} must be a number in [0, {_MAX_LEVEL[kind]:g}]; "
                           f"got {level!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise HdbenchError(f"seed must be an integer >= 0; got {seed!r}")
    return DegradedCircuit(circuit, kind, float(level), int(seed))


def _rng(kind: str, seed: int, *more: int) -> np.random.Generator:
    return np.random.default_rng([_STREAM, KINDS.index(kind), seed, *more])


def shuffle_inputs(weights: np.ndarray, populations, level: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Permute a fraction ``level`` of every cell's inputs from each source population.

    Every entry W[i, j] gets a fixed uniform draw u_ij and is chosen when u_ij < level (so the
    chosen sets of growing levels are nested); within each row of each (target, source)
    population block the chosen entries pass their values on cyclically in order of u, so no
    chosen entry keeps its own value (unless it is alone in its row). Each cell keeps the
    strengths of its inputs from every population — its total excitation and inhibition, hence
    the circuit's overall stability — but they come from the wrong cells.
    """
    u = rng.random(weights.shape)
    out = weights.copy()
    for target in populations:
        for source in populations:
            cols = np.arange(source.start, source.stop)
            for i in range(target.start, target.stop):
                chosen = cols[u[i, cols] < level]
                if chosen.size >= 2:
                    chosen = chosen[np.argsort(u[i, chosen])]
                    out[i, chosen] = weights[i, np.roll(chosen, -1)]
    return out


def derangement(populations, n_units: int, rng: np.random.Generator) -> np.ndarray:
    """A partner π(i) ≠ i for every unit, drawn within its population (identity for
    one-unit populations)."""
    partner = np.arange(n_units)
    for pop in populations:
        units = np.arange(pop.start, pop.stop)
        if units.size < 2:
            continue
        order = rng.permutation(units)
        partner[order] = np.roll(order, -1)  # one cycle through the population
    return partner


def remap_heading(rates: np.ndarray, heading: np.ndarray, units: np.ndarray,
                  bin_maps: np.ndarray) -> np.ndarray:
    """``rates`` [..., units] with the heading tuning of ``units`` read through their bin
    permutations (``heading-remap`` in the module docstring); ``heading`` [...] in rad.

    f_i(b) is unit i's mean rate over the samples in heading bin b (its overall mean where a
    bin is empty, so an empty bin moves nothing)."""
    n_bins = bin_maps.shape[1]
    bins = np.floor(np.mod(heading, 2 * np.pi) / (2 * np.pi) * n_bins).astype(np.int64)
    bins = np.minimum(bins, n_bins - 1).reshape(-1)
    flat = rates.reshape(-1, rates.shape[-1])
    out = flat.copy()
    counts = np.bincount(bins, minlength=n_bins)
    for i in units:
        sums = np.bincount(bins, weights=flat[:, i], minlength=n_bins)
        curve = np.where(counts > 0, sums / np.maximum(counts, 1), flat[:, i].mean())
        out[:, i] = np.maximum(flat[:, i] - curve[bins] + curve[bin_maps[i]][bins], 0.0)
    return out.reshape(rates.shape)


class DegradedCircuit:
    """A reference circuit degraded by :func:`degrade`; the system interface of the circuit.

    Attributes: ``intact`` (the circuit degraded), ``kind``, ``level``, ``seed``, and those of
    the circuit (``name``, ``instance_seed``, ``config``, ``version``, ``task``,
    ``cell_types`` (the intact labels), ``populations``, ``preferred_directions``, ``gains``).
    """

    def __init__(self, circuit: ReferenceCircuit, kind: str, level: float, seed: int):
        self.intact = circuit
        self.kind, self.level, self.seed = kind, level, seed
        self._circuit = circuit
        self._partner = None
        if kind == "shuffle-weights" and level > 0:
            parts = circuit._parts
            shuffled = shuffle_inputs(parts.weights, parts.populations, level, _rng(kind, seed))
            self._circuit = _with_parts(circuit, dataclasses.replace(parts, weights=shuffled))
        elif kind == "weight-noise" and level > 0:
            parts = circuit._parts
            eps = np.clip(_rng(kind, seed).standard_normal(parts.weights.shape), -3.0, 3.0)
            noisy = parts.weights * np.exp(level * eps - 0.5 * level * level)
            self._circuit = _with_parts(circuit, dataclasses.replace(parts, weights=noisy))
        elif kind == "time-constants" and level > 0:
            parts = circuit._parts
            self._circuit = _with_parts(circuit,
                                        dataclasses.replace(parts, tau=parts.tau * (1 + level)))
        elif kind == "tuning-scatter":
            self._partner = derangement(circuit._parts.populations, circuit.n_units,
                                        _rng(kind, seed))
        elif kind == "heading-remap":
            rng = _rng(kind, seed)
            self._remapped = np.flatnonzero(rng.random(circuit.n_units) < level)
            self._bin_maps = np.stack([rng.permutation(REMAP_BINS)
                                       for _ in range(circuit.n_units)])

    # -- what the circuit is ---------------------------------------------------------------

    def __getattr__(self, name):
        if name in ("name", "instance_seed", "config", "version", "task", "cell_types",
                    "populations", "preferred_directions", "gains", "substeps"):
            return getattr(self.intact, name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    @property
    def n_units(self) -> int:
        return self.intact.n_units

    def recurrent_weights(self) -> np.ndarray:
        """``W[target, source]`` that the degraded dynamics run on (float64 copy)."""
        return self._circuit.recurrent_weights()

    def decoder_weights(self) -> np.ndarray:
        return self._circuit.decoder_weights()

    def decode(self, rates: np.ndarray) -> np.ndarray:
        return self._circuit.decode(rates)

    def vector_field(self, a: torch.Tensor, dt: float = 0.025) -> torch.Tensor:
        """The degraded circuit's vector field at zero input (see
        :meth:`ReferenceCircuit.vector_field`); the intact one for recording degradations."""
        return self._circuit.vector_field(a, dt=dt)

    def state_rates(self, a: torch.Tensor) -> torch.Tensor:
        """Reported rates of a state: ``[a]₊``, blended for ``tuning-scatter``."""
        rates = torch.relu(a)
        if self._partner is None or self.level == 0:
            return rates
        mix = self.level / 2
        return (1 - mix) * rates + mix * rates[..., torch.as_tensor(self._partner)]

    # -- simulation --------------------------------------------------------------------------

    @torch.no_grad()
    def simulate(self, inputs, seed: int | None = None, silence: Silence | None = None,
                 dt: float | None = None) -> Activity:
        """Simulate like :meth:`ReferenceCircuit.simulate`; the reported rates (and the outputs
        read from them) carry the degradation. Silenced units report zero."""
        activity = self._circuit.simulate(inputs, seed=seed, silence=silence, dt=dt)
        if self.level == 0 or self.kind not in _RECORDING:
            return activity
        rates = activity.rates.astype(np.float64)
        if self.kind == "rate-noise":
            sd = rates.reshape(-1, rates.shape[-1]).std(axis=0)
            noise = _rng(self.kind, self.seed, 0 if seed is None else int(seed)) \
                .standard_normal(rates.shape)
            rates = rates + self.level * sd * noise
        elif self.kind == "heading-remap":
            heading = activity.heading if activity.heading is not None \
                else self.intact.decode(activity.rates)
            rates = remap_heading(rates, heading, self._remapped, self._bin_maps)
        else:
            mix = self.level / 2
            rates = (1 - mix) * rates + mix * rates[..., self._partner]
        if silence is not None and silence.units:
            window = slice(silence.start, silence.stop)
            rates[:, window, list(silence.units)] = 0.0
        rates = rates.astype(np.float32)
        vec = rates.astype(np.float64) @ self._circuit.decoder_weights()
        norm = np.linalg.norm(vec, axis=-1, keepdims=True)
        outputs = np.where(norm > 0, vec / np.where(norm > 0, norm, 1.0), 0.0)
        return dataclasses.replace(activity, rates=rates, outputs=outputs.astype(np.float32))

    def __repr__(self) -> str:
        return (f"DegradedCircuit({self.intact.name!r}, instance_seed="
                f"{self.intact.instance_seed}, kind={self.kind!r}, level={self.level:g}, "
                f"seed={self.seed})")


def _with_parts(circuit: ReferenceCircuit, parts) -> ReferenceCircuit:
    """A copy of ``circuit`` running on ``parts`` (labels, gains and PDs kept; own templates)."""
    clone = copy.copy(circuit)
    clone._install(parts)
    return clone
