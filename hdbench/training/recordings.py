"""Training on sparse recordings of a teacher (Salatiello & Giese 2020; issue 8).

A *teacher* is any system: a reference circuit (``fly``, ``rodent``; the "biology") or a
trained run. A random sample of k = round(p·N) of its N neurons is "recorded" (at least one
for p > 0). The student is a CTRNN with at least k units; teacher neuron ``teacher_units[i]``
is assigned to student unit ``student_units[i] = i`` for good. The loss is

    L = output MSE + λ_r·mean(h²) + λ_act · mean_{trials, post-cue steps, i} (h[s_i] − r̃_i)²

where r̃_i is the teacher's rate of neuron i **scaled per neuron into the student's rate
range**: r̃_i(t) = RATE_PEAK · r_i(t) / m_i, with m_i the largest rate of neuron i on a fixed
calibration set (CALIBRATION_TRIALS noise-free trials of the teacher's task, post-cue steps)
and RATE_PEAK = 0.5, half the ceiling of the student's rectified tanh (its slope there is
0.75, so the targets sit in the responsive range). A neuron silent on the calibration set
(m_i = 0) keeps the target 0. The other student units are free.

Teachers are simulated noise-free (references with ``noise_std=0``, instance 0, the instance
the leaderboard scores against) on their own task preset: a reference circuit turns AV in
rad/step into rad/s with the trials' ``dt`` and is tuned to its species' speeds, so the student
is trained on that preset (``fly`` / ``rodent``), a trained-run teacher on its run's task.

**The teacher bank.** Simulating a reference on 100 trials × 500 steps costs ~0.35 s, as much
as four 64-trial updates of a 100-unit student (~0.09 s each, one core). Simulating the teacher
for every batch would make training ~3x slower, so teacher trials are simulated in banks: bank
j holds ``bank_trials`` trials (seeded by the run seed and j) with the rates of the recorded
neurons only, and serves updates j·R … (j+1)·R − 1 (R = ``bank_refresh``), each a seeded
random batch of its trials. With 256 trials and R = 50 the teacher costs ~1 s per 50 updates
(measured: 13 s of 87 s for 600 fly updates of 64 trials, ~15 %), each trial is seen ~12 times,
and a bank of the fly's 81 neurons holds 41 MB at most. Everything is a pure function of
(config, update), so a resumed run sees exactly the same batches.
Runs with a teacher and p = 0 draw the same bank trials without simulating the teacher: they
are the output-only baseline on identical data.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hdbench import runs
from hdbench.errors import HdbenchError
from hdbench.task import get_spec, make_trials

RATE_PEAK = 0.5
CALIBRATION_TRIALS = 64
TEACHER_INSTANCE = 0
# Seed streams (disjoint from the task's 1-3, training noise 4 and scoring 5).
BANK_STREAM, RECORD_STREAM, CALIBRATION_STREAM = 21, 22, 23
RECORDED_FILE = "recorded.json"


@dataclass(frozen=True)
class Teacher:
    """A resolved teacher: the system, its task preset and what it is."""

    name: str
    system: object
    task: str
    kind: str  # "reference" or "run"

    @property
    def n_units(self) -> int:
        return int(self.system.n_units)


@functools.lru_cache(maxsize=4)
def _reference_teacher(name: str) -> Teacher:
    import reference_circuits

    system = reference_circuits.load(name, instance_seed=TEACHER_INSTANCE, noise_std=0.0)
    task = getattr(system, "task", None) or name
    try:
        get_spec(task)
    except HdbenchError:
        raise HdbenchError(f"reference circuit {name!r} has no task preset of its own; "
                           "it cannot be a teacher") from None
    return Teacher(name, system, task, "reference")


def load_teacher(name: str) -> Teacher:
    """A reference circuit by name, or a finished training run directory; else a clear error."""
    import reference_circuits

    if name in reference_circuits.available():
        return _reference_teacher(name)
    path = Path(name)
    if path.is_dir() and (path / runs.MODEL_FILE).is_file() and \
            (path / runs.CONFIG_FILE).is_file():
        run = runs.Run.load(path)
        return Teacher(name, run.model(), run.task, "run")
    raise HdbenchError(f"unknown teacher {name!r}: expected a reference circuit "
                       f"({', '.join(reference_circuits.available())}) or a finished training "
                       "run directory (with config.json and model.pt)")


def record_count(fraction: float, n_units: int) -> int:
    """k = round(p·N) (halves up), at least 1 when p > 0."""
    if fraction <= 0:
        return 0
    return min(n_units, max(1, math.floor(fraction * n_units + 0.5)))


def sample_recorded(n_units: int, fraction: float, seed: int) -> np.ndarray:
    """The recorded teacher neurons: the first k of a permutation drawn from ``seed``.

    Samples of one seed are nested (a larger p records a superset, with the same assignment).
    """
    order = np.random.default_rng([RECORD_STREAM, int(seed)]).permutation(int(n_units))
    return order[:record_count(fraction, n_units)]


def teacher_rates(teacher: Teacher, trials) -> np.ndarray:
    """Noise-free teacher rates [trials, time, N] (float32)."""
    activity = teacher.system.simulate(trials, seed=0)
    return np.asarray(activity.rates, dtype=np.float32)


@functools.lru_cache(maxsize=8)
def _peak_rates(name: str) -> np.ndarray:
    teacher = load_teacher(name)
    spec = get_spec(teacher.task)
    trials = make_trials(spec, CALIBRATION_TRIALS, [CALIBRATION_STREAM, 0])
    return teacher_rates(teacher, trials)[:, spec.cue_steps:].max(axis=(0, 1)).astype(np.float64)


def rate_scale(name: str) -> np.ndarray:
    """Per-neuron factor RATE_PEAK / m_i (0 where the neuron is silent), see the module doc."""
    peak = _peak_rates(name)
    return np.where(peak > 0, RATE_PEAK / np.where(peak > 0, peak, 1.0), 0.0)


@dataclass(frozen=True)
class Recording:
    """Which teacher neurons were recorded and how they map onto the student."""

    teacher: str
    teacher_task: str
    n_teacher_units: int
    record_fraction: float
    record_seed: int
    teacher_units: tuple[int, ...]
    student_units: tuple[int, ...]
    scale: tuple[float, ...]
    activity_weight: float

    @property
    def k(self) -> int:
        return len(self.teacher_units)

    def unrecorded(self) -> np.ndarray:
        return np.setdiff1d(np.arange(self.n_teacher_units), self.teacher_units)

    def to_dict(self) -> dict:
        return {"teacher": self.teacher, "teacher_task": self.teacher_task,
                "n_teacher_units": self.n_teacher_units,
                "record_fraction": self.record_fraction, "record_seed": self.record_seed,
                "k": self.k, "teacher_units": list(self.teacher_units),
                "student_units": list(self.student_units), "scale": list(self.scale),
                "rate_peak": RATE_PEAK, "activity_weight": self.activity_weight,
                "scaling": "r_scaled = scale * r_teacher, scale = rate_peak / max rate on the "
                           "calibration trials"}


def recording_for(config, teacher: Teacher | None = None) -> Recording:
    """The recording of a config with a teacher (checks student size and task)."""
    teacher = teacher or load_teacher(config.teacher)
    if config.task != teacher.task:
        raise HdbenchError(f"teacher {config.teacher!r} was built for task preset "
                           f"{teacher.task!r}; got task {config.task!r} (leave --task out to "
                           "use the teacher's)")
    seed = config.seed if config.record_seed is None else config.record_seed
    units = sample_recorded(teacher.n_units, config.record_fraction, seed)
    n_student = int(config.model_options.get("n_units", 100))
    if units.size > n_student:
        raise HdbenchError(f"the student has {n_student} units but {units.size} of the "
                           f"teacher's {teacher.n_units} neurons are recorded "
                           f"(record_fraction {config.record_fraction}); use --units >= "
                           f"{units.size}")
    scale = rate_scale(config.teacher)[units] if units.size else np.zeros(0)
    return Recording(config.teacher, teacher.task, teacher.n_units, config.record_fraction,
                     int(seed), tuple(int(u) for u in units), tuple(range(units.size)),
                     tuple(float(s) for s in scale), float(config.activity_weight))


def read_recording(run_dir) -> dict | None:
    """The stored recording of a run: ``recorded.json`` or ``metrics.json["recording"]``."""
    run_dir = Path(run_dir)
    if (run_dir / RECORDED_FILE).is_file():
        return json.loads((run_dir / RECORDED_FILE).read_text())
    if (run_dir / "metrics.json").is_file():
        return json.loads((run_dir / "metrics.json").read_text()).get("recording")
    return None


def activity_loss(rates: torch.Tensor, target: torch.Tensor, student_units, mask) -> torch.Tensor:
    """Mean over trials, post-cue steps and recorded neurons of (h[s_i] − r̃_i)².

    ``rates`` [B, T, n_student], ``target`` [B, T, k] (scaled teacher rates), ``mask`` [B, T].
    Only the assigned units' rates enter, so no gradient reaches the free units' rates directly.
    """
    if target.shape[-1] == 0:
        return rates.new_zeros(())
    index = torch.as_tensor(list(student_units), dtype=torch.long)
    m = mask.unsqueeze(-1).to(rates.dtype)
    diff = (rates.index_select(-1, index) - target) ** 2 * m
    return diff.sum() / (m.sum() * target.shape[-1])


class TeacherBank:
    """Training batches with the recorded teacher rates, from seeded banks (module doc)."""

    def __init__(self, config, recording: Recording, teacher: Teacher | None):
        self.config = config
        self.recording = recording
        self.teacher = teacher if recording.k else None
        self._units = np.asarray(recording.teacher_units, dtype=np.int64)
        self._scale = np.asarray(recording.scale, dtype=np.float32)
        self._index = None
        self._bank = None
        self.simulated_s = 0.0

    def _load(self, index: int):
        import time

        trials = make_trials(self.config.task, self.config.bank_trials,
                             [BANK_STREAM, self.config.seed, index])
        rates = np.zeros(trials.inputs.shape[:2] + (0,), dtype=np.float32)
        if self.teacher is not None:
            start = time.perf_counter()
            rates = teacher_rates(self.teacher, trials)[..., self._units] * self._scale
            self.simulated_s += time.perf_counter() - start
        self._index, self._bank = index, (trials, rates)

    def batch(self, update: int):
        """``(inputs, targets, mask, teacher_rates)`` tensors of training update ``update``."""
        index = update // self.config.bank_refresh
        if index != self._index:
            self._load(index)
        trials, rates = self._bank
        pick = np.sort(np.random.default_rng([BANK_STREAM, self.config.seed, index, update])
                       .choice(len(trials), size=self.config.batch_size, replace=False))
        return (torch.as_tensor(trials.inputs[pick]), torch.as_tensor(trials.targets[pick]),
                torch.as_tensor(trials.mask[pick]), torch.as_tensor(rates[pick]))


def activity_mse(model, recording: Recording, trials) -> float:
    """Noise-free activity loss of ``model`` on ``trials`` (0 when nothing is recorded)."""
    if not recording.k:
        return 0.0
    teacher = load_teacher(recording.teacher)
    target = teacher_rates(teacher, trials)[..., list(recording.teacher_units)] * \
        np.asarray(recording.scale, dtype=np.float32)
    with torch.no_grad():
        model.eval()
        _, rates = model(torch.as_tensor(trials.inputs))
        return float(activity_loss(rates, torch.as_tensor(target), recording.student_units,
                                   torch.as_tensor(trials.mask)))


def cli_teacher_options(teacher, record_fraction, activity_weight=None, record_seed=None,
                        task=None) -> tuple[str, dict]:
    """``(task, config changes)`` for ``hdbench train --teacher ... --record-fraction ...``.

    The command line asks for p in (0, 1] (p = 0, output-only training, is the experiment's
    baseline); the task defaults to the teacher's own preset.
    """
    if teacher is None:
        raise HdbenchError("--record-fraction needs --teacher (a reference circuit or a run "
                           "directory)")
    if record_fraction is None:
        raise HdbenchError("--teacher needs --record-fraction P, the fraction in (0, 1] of "
                           "its neurons that are recorded")
    if not 0.0 < record_fraction <= 1.0:
        raise HdbenchError(f"--record-fraction must lie in (0, 1]; got {record_fraction:g}")
    resolved = load_teacher(teacher)
    changes = {"teacher": teacher, "record_fraction": float(record_fraction)}
    if activity_weight is not None:
        changes["activity_weight"] = activity_weight
    if record_seed is not None:
        changes["record_seed"] = record_seed
    return task or resolved.task, changes
