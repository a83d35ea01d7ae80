"""What benchmarks read about one system: its activity on fixed evaluation trials, and more.

A :class:`Bundle` is built once per (system, reference task) and handed to every benchmark of that
reference. Everything in it is computed on first use and kept, so that benchmarks sharing an
input (the activity on the test trials, the weights, a derived tuning table) never simulate or
compute it twice. Benchmarks take ``(subject_bundle, reference_bundle)``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hdbench.errors import HdbenchError
from hdbench.task import PRESETS, TaskSpec, Trials, get_spec, make_trials, seed_for

# Seed stream of scoring trials: disjoint from training (1), validation (2), test (3) and the
# training rate noise (4).
SCORING_STREAM = 5
LONG_TRIAL_FACTOR = 2
AV_NOISE_FRACTION = 0.25


@dataclass(frozen=True)
class EvalProtocol:
    """How many evaluation trials a bundle simulates, and from which seed.

    Part of every score's cache key: scores from different protocols are never mixed.
    """

    n_trials: int = 256
    seed: int = 0

    def __post_init__(self):
        if isinstance(self.n_trials, bool) or not isinstance(self.n_trials, int) \
                or self.n_trials < 1:
            raise HdbenchError(f"n_trials must be a positive integer; got {self.n_trials!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def key(self) -> str:
        return hash_of(self.to_dict())


QUICK_PROTOCOL = EvalProtocol(n_trials=32)


def hash_of(obj) -> str:
    """16 hex digits of the SHA-256 of ``obj``'s canonical JSON (sorted keys)."""
    payload = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _test_trials(spec: TaskSpec, protocol: EvalProtocol) -> Trials:
    return make_trials(spec, protocol.n_trials, seed_for(SCORING_STREAM, protocol.seed, 0))


def _long_trials(spec: TaskSpec, protocol: EvalProtocol) -> Trials:
    longer = spec.replace(n_steps=LONG_TRIAL_FACTOR * spec.n_steps)
    return make_trials(longer, protocol.n_trials, seed_for(SCORING_STREAM, protocol.seed, 1))


def _av_noise_trials(spec: TaskSpec, protocol: EvalProtocol) -> Trials:
    """The test trials with Gaussian noise on the AV input after the cue; targets unchanged.

    Noise SD = ``AV_NOISE_FRACTION`` x the task's stationary AV SD (rad/step).
    """
    clean = _test_trials(spec, protocol)
    rng = np.random.default_rng(seed_for(SCORING_STREAM, protocol.seed, 2))
    noise = rng.standard_normal(clean.av.shape) * AV_NOISE_FRACTION * spec.stationary_sd
    inputs = clean.inputs.copy()
    inputs[:, :, 0] += np.where(clean.mask, noise, 0.0).astype(np.float32)
    return dataclasses.replace(clean, inputs=inputs)


# name -> trials(spec, protocol). Changing a generator changes scores: bump the versions of the
# benchmarks that use it.
TRIAL_SETS: dict[str, Callable[[TaskSpec, EvalProtocol], Trials]] = {
    "test": _test_trials,
    "long": _long_trials,
    "av_noise": _av_noise_trials,
}


def task_for_reference(name: str, system=None) -> TaskSpec:
    """The task a reference is scored on: the reference system's ``task`` attribute (a preset
    name or a :class:`TaskSpec`) if it has one, else the preset of the same name (``rodent``,
    ``fly``); never a silent default."""
    task = getattr(system, "task", None)
    if isinstance(task, (str, TaskSpec)):
        return get_spec(task)
    if name in PRESETS:
        return PRESETS[name]
    raise HdbenchError(f"reference {name!r} has no task: give its system a `task` attribute "
                       f"(a preset name, one of {', '.join(PRESETS)}, or a TaskSpec)")


class Bundle:
    """Lazily computed, memoised facts about one system on one task.

    Parameters
    ----------
    system : System
        A trained model, an untrained one or a reference circuit.
    spec : TaskSpec
        The reference task the trials are drawn from.
    protocol : EvalProtocol
    label : str
        For messages only.
    """

    def __init__(self, system, spec: TaskSpec, protocol: EvalProtocol = EvalProtocol(),
                 label: str = ""):
        self.system = system
        self.spec = spec
        self.protocol = protocol
        self.label = label
        self._memo: dict = {}
        self.n_simulations = 0

    def memo(self, key, compute: Callable[[], object]):
        """``compute()`` the first time ``key`` is asked for; the kept value afterwards."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def trials(self, name: str = "test") -> Trials:
        """The evaluation trials of the trial set ``name`` (see :data:`TRIAL_SETS`)."""
        if name not in TRIAL_SETS:
            raise HdbenchError(f"unknown trial set {name!r}; known: {', '.join(TRIAL_SETS)}")
        return self.memo(("trials", name), lambda: TRIAL_SETS[name](self.spec, self.protocol))

    def activity(self, name: str = "test"):
        """The system's noise-free :class:`~hdbench.system.Activity` on ``trials(name)``."""
        def run():
            self.n_simulations += 1
            return self.system.simulate(self.trials(name), seed=self.protocol.seed)

        return self.memo(("activity", name), run)

    @property
    def weights(self) -> np.ndarray:
        """Recurrent weights ``W[target, source]``."""
        return self.memo("weights", lambda: np.asarray(self.system.recurrent_weights()))

    @property
    def cell_types(self) -> tuple[str, ...] | None:
        return getattr(self.system, "cell_types", None)

    @property
    def n_units(self) -> int:
        return int(self.system.n_units)
