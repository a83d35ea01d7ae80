"""The frozen, JSON-serialisable configuration of one training run."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field

from hdbench.errors import HdbenchError
from hdbench.versions import training_identity

LR_SCHEDULES = ("constant", "cosine")
# Fields of training on sparse recordings of a teacher (issue 8), serialised only when set.
TEACHER_FIELDS = ("teacher", "record_fraction", "activity_weight", "record_seed", "bank_trials",
                  "bank_refresh")
TEACHER_DEFAULTS = {"activity_weight": 1.0, "bank_trials": 256, "bank_refresh": 50}
# Optional fields serialised only when set, so that configs without them hash as before.
OPTIONAL_FIELDS = ("target_val_ne",)
MAX_SEED = 2**32 - 1
# Float tensors of the size batch x steps x units that one training update keeps alive (rates,
# GEMM rows, slopes, the backward's P, gradients, noise blocks): for the memory estimate.
_LIVE_BLOCKS = 10


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run's result.

    Defaults follow the Cueva et al. public schedule (papers.md §1.3) except two measured fixes:
    with a constant learning rate the public schedule sits on an NE ≈ 0.9 plateau for ~1400–1700
    updates and ends near NE 5–10 %, because the AV input weights can only grow by about ``lr``
    per Adam step. ``input_lr_factor = 10`` ends the plateau after ~300–400 updates, and a
    cosine schedule (to 1 % of ``lr``) gives the precision at the end.

    Parameters
    ----------
    model : str
        Registry name (``ctrnn``, ``gru``, ``lstm``, ``vanilla``).
    model_options : dict
        Passed to :func:`hdbench.models.build` (e.g. ``{"activation": "tanh"}``).
    task : str
        Task preset the training trials are drawn from.
    seed : int
        Seeds the initialisation, the training-trial stream and the rate noise.
    updates, batch_size : int
        Parameter updates, each on ``batch_size`` freshly drawn trials.
    lr, weight_decay : float
        AdamW learning rate and decoupled weight decay (stated explicitly: PyTorch's AdamW
        default of 0.01 is what the public code used implicitly).
    input_lr_factor : float
        Learning-rate multiplier for the input weights. AV arrives in rad/step (SD 0.05 at
        ``cueva-1x``), so its input weights must grow by an order of magnitude; Adam moves a
        weight by at most about ``lr`` per update, which makes them the slowest parameters.
    lr_schedule : {"constant", "cosine"}
        ``cosine`` anneals the learning rate to ``lr * lr_final_factor`` over the run.
    grad_clip : float
        Gradient-norm clipping threshold.
    rate_penalty : float
        Initial λ_r of the λ_r·mean(h²) term.
    adaptive_rate_penalty : bool
        Multiply λ_r by 2/3 whenever λ_r·mean(h²) >= ½·output MSE (the change persists).
    weight_l2 : float
        Optional L2 penalty on input and output weights (Cueva & Wei 2018 R_L2).
    noise_std : float
        SD of the Gaussian rate noise during training (0 at evaluation).
    val_every, val_trials, test_trials : int
        Validation cadence and set sizes. The checkpoint with the lowest validation NE is kept;
        test NE is reported on it.
    checkpoint_every : int
        Updates between resumable checkpoints.
    teacher : str, optional
        Train on sparse recordings of a teacher (:mod:`hdbench.training.recordings`): a
        reference circuit name (``fly``, ``rodent``) or a finished training run directory.
        None (default) = ordinary output-only training. The fields below belong to this mode
        and must be None without a teacher; the config only serialises them when set, so the
        run hashes of ordinary runs are unchanged.
    record_fraction : float, optional
        p in [0, 1]: the fraction of teacher neurons "recorded" (k = round(p·N), at least 1
        for p > 0). Required with a teacher; 0 = output-only training on the teacher's trials.
    activity_weight : float, optional
        λ_act of the activity loss (default 1.0 with a teacher).
    record_seed : int, optional
        Seed of the recorded sample; None = ``seed``.
    bank_trials, bank_refresh : int, optional
        The teacher bank: ``bank_trials`` trials simulated once and reused for ``bank_refresh``
        updates (defaults 256 and 50 with a teacher).
    target_val_ne : float, optional
        Early stop: training ends at the first validation whose NE is below this (the model of
        that validation is kept), else after ``updates``. None (default): no early stop; only
        serialised when set, so existing run hashes are unchanged. Meant for constant learning
        rates: a cosine schedule's rate depends on ``updates``, so stopping it early leaves it
        mid-schedule.
    """

    model: str = "ctrnn"
    model_options: dict = field(default_factory=dict)
    task: str = "cueva-1x"
    seed: int = 0
    updates: int = 5000
    batch_size: int = 100
    lr: float = 1e-3
    input_lr_factor: float = 10.0
    lr_schedule: str = "cosine"
    lr_final_factor: float = 0.01
    weight_decay: float = 0.01
    grad_clip: float = 10.0
    rate_penalty: float = 0.01
    adaptive_rate_penalty: bool = True
    weight_l2: float = 0.0
    noise_std: float = 0.1
    val_every: int = 100
    val_trials: int = 500
    test_trials: int = 1000
    checkpoint_every: int = 100
    teacher: str | None = None
    record_fraction: float | None = None
    activity_weight: float | None = None
    record_seed: int | None = None
    bank_trials: int | None = None
    bank_refresh: int | None = None
    target_val_ne: float | None = None

    def __post_init__(self):
        from hdbench.task import get_spec

        get_spec(self.task)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) \
                or not 0 <= self.seed <= MAX_SEED:
            raise HdbenchError(f"seed must be an integer in [0, {MAX_SEED}]; got {self.seed!r}")
        for name in ("updates", "batch_size", "val_every", "val_trials", "test_trials",
                     "checkpoint_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise HdbenchError(f"{name} must be a positive integer; got {value!r}")
        for name in ("lr", "lr_final_factor", "input_lr_factor", "grad_clip"):
            value = getattr(self, name)
            if not _real(value) or not (math.isfinite(value) and value > 0):
                raise HdbenchError(f"{name} must be a finite number > 0; got {value!r}")
        for name in ("weight_decay", "rate_penalty", "weight_l2", "noise_std"):
            value = getattr(self, name)
            if not _real(value) or not (math.isfinite(value) and value >= 0):
                raise HdbenchError(f"{name} must be a finite number >= 0; got {value!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise HdbenchError(
                f"unknown lr_schedule {self.lr_schedule!r}; known: {', '.join(LR_SCHEDULES)}"
            )
        if not isinstance(self.model_options, dict):
            raise HdbenchError("model_options must be a dict")
        if self.target_val_ne is not None:
            if not _real(self.target_val_ne) or not (math.isfinite(self.target_val_ne)
                                                     and self.target_val_ne > 0):
                raise HdbenchError(f"target_val_ne must be a finite number > 0 or None; "
                                   f"got {self.target_val_ne!r}")
            object.__setattr__(self, "target_val_ne", float(self.target_val_ne))
        self._check_teacher()

    def _check_teacher(self) -> None:
        """Validate the sparse-recordings fields; fill in their defaults when a teacher is set."""
        if self.teacher is None:
            given = [name for name in TEACHER_FIELDS[1:] if getattr(self, name) is not None]
            if given:
                raise HdbenchError(f"{', '.join(given)} only apply with a teacher "
                                   "(set teacher to a reference circuit or a run directory)")
            return
        if not isinstance(self.teacher, str) or not self.teacher:
            raise HdbenchError(f"teacher must be a reference name or a run directory; "
                               f"got {self.teacher!r}")
        if self.model != "ctrnn":
            raise HdbenchError(f"a student of a teacher must be a ctrnn; got model {self.model!r}")
        p = self.record_fraction
        if p is None:
            raise HdbenchError("a teacher needs record_fraction, the fraction p in [0, 1] of its "
                               "neurons that are recorded")
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise HdbenchError(f"record_fraction must lie in [0, 1]; got {p!r}")
        object.__setattr__(self, "record_fraction", float(p))  # 1 and 1.0 hash alike
        for name, default in TEACHER_DEFAULTS.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, default)
        if isinstance(self.activity_weight, bool) or \
                not isinstance(self.activity_weight, (int, float)) or not self.activity_weight >= 0:
            raise HdbenchError(f"activity_weight must be >= 0; got {self.activity_weight!r}")
        object.__setattr__(self, "activity_weight", float(self.activity_weight))
        for name in ("bank_trials", "bank_refresh"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise HdbenchError(f"{name} must be a positive integer; got {value!r}")
        if self.bank_trials < self.batch_size:
            raise HdbenchError(f"bank_trials ({self.bank_trials}) must be >= batch_size "
                               f"({self.batch_size})")
        if self.record_seed is not None and (isinstance(self.record_seed, bool)
                                             or not isinstance(self.record_seed, int)):
            raise HdbenchError(f"record_seed must be an integer; got {self.record_seed!r}")

    def to_dict(self) -> dict:
        """The fields as a dict; unset (None) teacher and optional fields are left out, so that
        configs without them serialise (and hash) exactly as before the fields existed."""
        data = dataclasses.asdict(self)
        for name in (*TEACHER_FIELDS, *OPTIONAL_FIELDS):
            if data[name] is None:
                del data[name]
        return data

    def reached_target(self, val_ne: float) -> bool:
        """Whether a validation NE ends training early (``target_val_ne`` set and beaten)."""
        return self.target_val_ne is not None and val_ne < self.target_val_ne

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise HdbenchError(f"unknown training config keys: {', '.join(sorted(unknown))}")
        return cls(**data)

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def run_hash(self) -> str:
        """Identity of the run: hash of the config and of the versions of the code components
        that determine a trained model (:func:`hdbench.versions.training_identity`)."""
        payload = json.dumps({"config": self.to_dict(), "code": training_identity()},
                             sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def estimated_memory_bytes(self) -> int:
        """A rough upper estimate of the memory one training update needs (float32 blocks of
        batch x steps x units, the weights, validation), to refuse impossible sizes early."""
        from hdbench.task import get_spec

        units = self.model_options.get("n_units", 100)
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            raise HdbenchError(f"model option n_units must be a positive integer; got {units!r}")
        steps = get_spec(self.task).n_steps
        gates = 4 if self.model == "lstm" else 3 if self.model == "gru" else 1
        trials = max(self.batch_size, self.val_trials, self.test_trials)
        activity = 4 * _LIVE_BLOCKS * gates * self.batch_size * steps * units
        evaluation = 4 * 3 * gates * trials * steps * units
        weights = 4 * 16 * gates * units * (units + 8)
        return activity + evaluation + weights


def _real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
