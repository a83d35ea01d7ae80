"""Bring your own model: subjects from a user's Python file or from activity recorded elsewhere.

- :class:`ExternalSubject` is ``path/to/file.py:factory``: the factory (called without
  arguments) returns any object with the system interface. Its identity is the digest of what
  it does (rates and outputs on a fixed probe batch, and its weights), so a model retrained in
  place, or a file that loads new weights, is never given its old scores.
- :class:`PluginSubject` is the system an installed ``hdbench.models`` entry point builds.
- :class:`ActivitySubject` is an ``.npz`` of rates (and optional outputs and weights) computed
  elsewhere on exactly the trials :func:`export_trials` writes. It stands in for a system that
  can only replay those trials: a benchmark that needs anything else (silencing, slow points,
  longer or noisy trials, weights or outputs that were not submitted) raises
  :class:`~hdbench.errors.NotComputableError` and is recorded as not computable.

Evaluation trials (``export_trials``): for each reference, in name order, the ``test`` trial set
of the scoring protocol on that reference's task (:data:`hdbench.scoring.bundle.TRIAL_SETS`),
concatenated along the trial axis.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from hdbench._version import __version__
from hdbench.errors import HdbenchError, NotComputableError
from hdbench.scoring.bundle import TRIAL_SETS, EvalProtocol
from hdbench.scoring.subjects import ReferenceSpec
from hdbench.system import MAX_MAGNITUDE, Activity, split_inputs
from hdbench.user_models import (
    as_user_system,
    behaviour_digest,
    load_factory,
)

TRIALS_FORMAT = "hdbench-trials"
TRIALS_FORMAT_VERSION = 1
SUBMISSION_KEYS = ("rates", "outputs", "W")


def file_digest(path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def inputs_digest(inputs: np.ndarray) -> str:
    """SHA-256 (hex) of a float32 ``[batch, time, 3]`` input array: names a trial set."""
    array = np.ascontiguousarray(inputs, dtype=np.float32)
    return hashlib.sha256(repr(array.shape).encode() + array.tobytes()).hexdigest()


def model_id_from(text: str) -> str:
    """A leaderboard model id from free text (a file stem): other characters become ``-``."""
    cleaned = re.sub(r"[^A-Za-z0-9_+-]", "-", text).strip("-_+") or "model"
    return cleaned if cleaned[0].isalnum() else f"m{cleaned}"


# -- a model from a Python file -----------------------------------------------------------------

@dataclass(frozen=True)
class ExternalSubject:
    """A system built by ``factory()`` in the Python file ``path``.

    Identity: the digest of its behaviour (:func:`hdbench.user_models.behaviour_digest`: rates
    and outputs on a fixed probe batch, and its weights), not of the file: a model retrained in
    place (same file, new weights) is a new subject, a moved or reformatted file keeps its
    scores. The file is imported anew in each worker process, which checks the behaviour is
    still the planned one.
    """

    path: str
    factory: str
    behaviour: str

    @classmethod
    def from_file(cls, path, factory: str) -> ExternalSubject:
        path = Path(path).expanduser().resolve()
        return cls(str(path), factory, behaviour_digest(load_factory(path, factory)))

    def identity(self) -> dict:
        return {"kind": "external", "behaviour": self.behaviour, "factory": self.factory}

    def describe(self) -> str:
        return f"{Path(self.path).name}:{self.factory} ({self.behaviour[:12]})"

    def load(self):
        """Import the file, call the factory, check it still behaves as planned."""
        system = load_factory(self.path, self.factory)
        if behaviour_digest(system) != self.behaviour:
            raise HdbenchError(f"{Path(self.path).name}:{self.factory}() behaves differently "
                               "from when it was planned for scoring (retrained or edited); "
                               "run again")
        return system


@dataclass(frozen=True)
class PluginSubject:
    """The system an installed ``hdbench.models`` plugin builds with no options.

    Identity: the entry point, its distribution's name and version and the digest of the
    system's behaviour (:func:`hdbench.user_models.behaviour_digest`).
    """

    name: str
    value: str
    distribution: str | None
    version: str | None
    behaviour: str

    @classmethod
    def from_name(cls, name: str) -> PluginSubject:
        from hdbench.models import plugins

        found = plugins()
        if name not in found:
            raise HdbenchError(f"--model takes [NAME=]path/to/file.py:factory or the name of an "
                               f"installed hdbench.models plugin "
                               f"({', '.join(sorted(found)) or 'none installed'}); got {name!r}")
        ep = found[name]
        dist = getattr(ep, "dist", None)
        return cls(name, ep.value, getattr(dist, "name", None), getattr(dist, "version", None),
                   behaviour_digest(cls._build(name)))

    @staticmethod
    def _build(name: str):
        from hdbench.models import build

        return as_user_system(build(name), f"plugin {name}")

    def identity(self) -> dict:
        return {"kind": "plugin", "name": self.name, "value": self.value,
                "distribution": self.distribution, "version": self.version,
                "behaviour": self.behaviour}

    def describe(self) -> str:
        dist = f", {self.distribution} {self.version}" if self.distribution else ""
        return f"plugin {self.name} ({self.value}{dist})"

    def load(self):
        system = self._build(self.name)
        if behaviour_digest(system) != self.behaviour:
            raise HdbenchError(f"plugin {self.name!r} ({self.value}) behaves differently from "
                               "when it was planned for scoring; run again")
        return system


# -- the canonical evaluation trials -------------------------------------------------------------

@dataclass(frozen=True)
class TrialBlock:
    """The evaluation trials of one reference: rows ``start:stop`` of the exported arrays."""

    reference: str
    task: str
    start: int
    stop: int
    digest: str


def evaluation_trials(references, protocol: EvalProtocol) -> list[tuple[ReferenceSpec, object]]:
    """``[(reference, Trials)]`` in reference-name order: what scoring feeds a subject.

    The reference task comes from instance 0 of the circuit (as in a scoring job); all
    references' trials must have the same number of steps to share one array.
    """
    from hdbench.scoring.job import reference_bundle

    specs = sorted((ReferenceSpec.parse(r) for r in references), key=lambda r: r.name)
    if not specs:
        raise HdbenchError("no references: give at least one")
    out = []
    for reference in specs:
        reference.check()
        bundle = reference_bundle(reference, 0, protocol)
        out.append((reference, TRIAL_SETS["test"](bundle.spec, protocol)))
    steps = {trials.n_steps for _, trials in out}
    if len(steps) > 1:
        detail = ", ".join(f"{r.name} {t.n_steps}" for r, t in out)
        raise HdbenchError(f"the references' tasks have different trial lengths ({detail}); "
                           "export and score them one --reference at a time")
    return out


def trial_blocks(trial_sets) -> tuple[TrialBlock, ...]:
    blocks, start = [], 0
    for reference, trials in trial_sets:
        blocks.append(TrialBlock(reference.name, trials.spec.name, start, start + len(trials),
                                 inputs_digest(trials.inputs)))
        start += len(trials)
    return tuple(blocks)


def export_trials(out, references, protocol: EvalProtocol) -> dict:
    """Write the evaluation inputs of ``references`` under ``protocol`` to the ``.npz`` ``out``.

    Arrays (``N`` = references x ``protocol.n_trials`` trials, ``T`` steps, one block of rows
    per reference in name order):

    - ``inputs`` float32 ``[N, T, 3]``: AV (rad/step, > 0 = CCW), sin θ0, cos θ0 (cue only);
    - ``heading`` float64 ``[N, T]`` (rad, [0, 2π)); ``av`` float64 ``[N, T]`` (rad/step);
    - ``targets`` float32 ``[N, T, 2]`` (sin θ, cos θ); ``mask`` bool ``[N, T]`` (after the cue);
    - ``reference`` ``[N]`` and ``task`` ``[N]``: the reference and task preset of each trial;
    - ``references``, ``tasks``, ``block_start``, ``block_stop``, ``cue_steps``, ``dt``
      ``[R]``: the blocks;
    - ``n_hd_bins`` and ``av_bin_edges`` ``[R, 4]``: the HD x AV conditions of the
      representation benchmarks;
    - ``format`` (``"hdbench-trials"``), ``format_version`` (1) and ``provenance`` (JSON text:
      hdbench version, git commit, protocol, references, task specs, seeds, creation time,
      SHA-256 of each block's inputs).

    Returns the provenance dict.
    """
    from hdbench.scoring.bundle import SCORING_STREAM
    from hdbench.scoring.measures import N_HD_BINS, av_bin_edges
    from hdbench.store import git_state

    trial_sets = evaluation_trials(references, protocol)
    blocks = trial_blocks(trial_sets)
    all_trials = [t for _, t in trial_sets]
    git = git_state()
    info = {
        "format": TRIALS_FORMAT, "format_version": TRIALS_FORMAT_VERSION,
        "hdbench_version": __version__,
        "git_commit": (git["commit"] + (" (dirty)" if git["dirty"] else "")) if git else None,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "protocol": protocol.to_dict(), "trial_set": "test",
        "seed": f"numpy default_rng(seed_for({SCORING_STREAM}, {protocol.seed}, 0))",
        "references": [r.to_dict() for r, _ in trial_sets],
        "tasks": {t.spec.name: _spec_dict(t.spec) for t in all_trials},
        "blocks": [block.__dict__ for block in blocks],
        "n_trials": sum(len(t) for t in all_trials), "n_steps": all_trials[0].n_steps,
    }
    arrays = {
        "inputs": np.concatenate([t.inputs for t in all_trials]),
        "heading": np.concatenate([t.heading for t in all_trials]),
        "av": np.concatenate([t.av for t in all_trials]),
        "targets": np.concatenate([t.targets for t in all_trials]),
        "mask": np.concatenate([t.mask for t in all_trials]),
        "reference": np.array([b.reference for b in blocks for _ in range(b.stop - b.start)]),
        "task": np.array([b.task for b in blocks for _ in range(b.stop - b.start)]),
        "references": np.array([b.reference for b in blocks]),
        "tasks": np.array([b.task for b in blocks]),
        "block_start": np.array([b.start for b in blocks], dtype=np.int64),
        "block_stop": np.array([b.stop for b in blocks], dtype=np.int64),
        "cue_steps": np.array([t.spec.cue_steps for t in all_trials], dtype=np.int64),
        "dt": np.array([t.spec.dt for t in all_trials]),
        "n_hd_bins": np.array(N_HD_BINS),
        "av_bin_edges": np.stack([av_bin_edges(t) for t in all_trials]),
        "format": np.array(TRIALS_FORMAT),
        "format_version": np.array(TRIALS_FORMAT_VERSION),
        "provenance": np.array(json.dumps(info, sort_keys=True)),
    }
    from hdbench.atomic import atomic_write_bytes

    out = Path(out)
    if out.suffix != ".npz":
        raise HdbenchError(f"--out must end in .npz; got {out}")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out, buffer.getvalue())
    except OSError as err:
        raise HdbenchError(f"cannot write {out}: {err.strerror}") from None
    return info


def _spec_dict(spec) -> dict:
    import dataclasses

    return dataclasses.asdict(spec)


# -- recorded activity ----------------------------------------------------------------------------

def _array(data, key: str, path) -> np.ndarray:
    try:
        array = data[key]
    except ValueError as err:  # numpy refuses object arrays with allow_pickle=False
        raise HdbenchError(f"{path}: array {key!r} is a pickled object array ({err}); save "
                           "plain numeric arrays") from None
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise HdbenchError(f"{path}: array {key!r} cannot be read ({err})") from None
    if array.dtype.kind not in "fiub":
        raise HdbenchError(f"{path}: array {key!r} has dtype {array.dtype}; expected real "
                           "numbers")
    if array.dtype.kind != "f":
        array = array.astype(np.float64)
    elif array.dtype.itemsize < 4:
        array = array.astype(np.float32)
    bad = ~np.isfinite(array)
    if bad.any():
        where = ", ".join(str(int(i)) for i in np.argwhere(bad)[0])
        raise HdbenchError(f"{path}: {key} contains {int(bad.sum())} NaN or inf values "
                           f"(first at index [{where}])")
    if array.size and float(np.abs(array).max()) > MAX_MAGNITUDE:
        raise HdbenchError(f"{path}: {key} reaches {float(np.abs(array).max()):.3g}; values "
                           f"above {MAX_MAGNITUDE:g} overflow float64 arithmetic, rescale them")
    return array


def read_submission(path, n_trials: int, n_steps: int, weights_key: str = "W",
                    blocks: tuple[TrialBlock, ...] = (),
                    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``(rates, outputs or None, W or None)`` of a submission, validated.

    ``rates`` must be ``[n_trials, n_steps, units]``; ``outputs`` (optional) ``[n_trials,
    n_steps, 2]``; ``weights_key`` (optional) ``[units, units]``; all finite real numbers. An
    optional ``inputs`` array (the exported inputs, passed through) must equal the trials of
    ``blocks``. Loaded with ``allow_pickle=False``. Every problem raises a one-line
    :class:`HdbenchError`.
    """
    path = Path(path)
    if not path.is_file():
        raise HdbenchError(f"activity file {path} not found")
    if not zipfile.is_zipfile(path):
        raise HdbenchError(f"{path} is not an .npz archive (write it with numpy.savez or "
                           "numpy.savez_compressed)")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
        raise HdbenchError(f"{path} is not a readable .npz archive: {err}") from None
    with data:
        keys = set(data.files)
        if "rates" not in keys:
            raise HdbenchError(f"{path} has no 'rates' array; found: "
                               f"{', '.join(sorted(keys)) or 'nothing'}")
        rates = _array(data, "rates", path)
        if rates.ndim != 3:
            raise HdbenchError(f"{path}: rates must be [trials, time, units]; got shape "
                               f"{rates.shape}")
        if rates.shape[0] != n_trials:
            raise HdbenchError(f"{path}: rates has {rates.shape[0]} trials; the exported trials "
                               f"number {n_trials} (same --reference and --quick as "
                               "export-trials?)")
        if rates.shape[1] != n_steps:
            raise HdbenchError(f"{path}: rates has {rates.shape[1]} time steps; the exported "
                               f"trials have {n_steps}")
        if rates.shape[2] < 1:
            raise HdbenchError(f"{path}: rates has no units")
        outputs = None
        if "outputs" in keys:
            outputs = _array(data, "outputs", path)
            if outputs.shape != (n_trials, n_steps, 2):
                raise HdbenchError(f"{path}: outputs must be [trials, time, 2] = "
                                   f"[{n_trials}, {n_steps}, 2] (sin, cos of the heading "
                                   f"estimate); got shape {outputs.shape}")
        if "inputs" in keys:
            _check_inputs(_array(data, "inputs", path), blocks, n_trials, n_steps, path)
        weights = None
        if weights_key in keys:
            weights = _array(data, weights_key, path)
            if weights.ndim != 2 or weights.shape[0] != weights.shape[1]:
                raise HdbenchError(f"{path}: {weights_key} must be a square [units, units] "
                                   f"matrix; got shape {weights.shape}")
            if weights.shape[0] != rates.shape[2]:
                raise HdbenchError(f"{path}: {weights_key} is {weights.shape[0]} x "
                                   f"{weights.shape[1]} but rates have {rates.shape[2]} units")
        elif weights_key != "W":
            raise HdbenchError(f"{path} has no {weights_key!r} array (--weights-key); found: "
                               f"{', '.join(sorted(keys))}")
    return rates, outputs, weights


def _check_inputs(inputs, blocks, n_trials: int, n_steps: int, path) -> None:
    """A submission's copy of the inputs must be the exported trials, block by block."""
    if inputs.shape != (n_trials, n_steps, 3):
        raise HdbenchError(f"{path}: inputs must be the exported [{n_trials}, {n_steps}, 3] "
                           f"array; got shape {inputs.shape}")
    for block in blocks:
        if inputs_digest(inputs[block.start:block.stop]) != block.digest:
            raise HdbenchError(f"{path}: inputs of rows {block.start}:{block.stop} are not the "
                               f"exported trials of reference {block.reference!r}; export them "
                               "again with this hdbench and the same --quick and --reference")


class RecordedActivity(Activity):
    """An :class:`Activity` whose ``outputs`` may be missing: reading them is then not
    computable (the submission had no outputs)."""

    @property
    def outputs(self):
        if self._outputs is None:
            raise NotComputableError("not computable from activity: no outputs submitted")
        return self._outputs

    @outputs.setter
    def outputs(self, value):
        self._outputs = value


class ActivitySystem:
    """Replays recorded activity on exactly the exported trials; nothing else.

    ``simulate`` recognises a block of the exported trials by the digest of its inputs and
    returns its rows. Other trials, silencing, the vector field and (when not submitted)
    weights or outputs raise :class:`NotComputableError`.
    """

    cell_types = None

    def __init__(self, rates, outputs, weights, blocks: tuple[TrialBlock, ...]):
        self.rates, self.outputs, self.weights, self.blocks = rates, outputs, weights, blocks

    @property
    def n_units(self) -> int:
        return int(self.rates.shape[-1])

    def simulate(self, inputs, seed=None, silence=None) -> Activity:
        if silence is not None:
            raise NotComputableError("not computable from activity: needs silencing")
        array, heading, av = split_inputs(inputs)
        digest = inputs_digest(array)
        for block in self.blocks:
            if block.digest == digest:
                rows = slice(block.start, block.stop)
                outputs = None if self.outputs is None else self.outputs[rows]
                return RecordedActivity(rates=self.rates[rows], outputs=outputs, inputs=array,
                                        heading=heading, av=av)
        raise NotComputableError("not computable from activity: needs new simulations")

    def recurrent_weights(self) -> np.ndarray:
        if self.weights is None:
            raise NotComputableError("not computable from activity: no weights submitted")
        return self.weights

    def vector_field(self, a):
        raise NotComputableError("not computable from activity: needs the vector field")


@dataclass(frozen=True)
class ActivitySubject:
    """Rates (and optional outputs and weights) in the ``.npz`` ``path``, recorded on the
    exported trials ``blocks``. Identity: the file's SHA-256, the weights key and the blocks."""

    path: str
    sha256: str
    blocks: tuple[TrialBlock, ...]
    n_steps: int
    weights_key: str = "W"

    @classmethod
    def from_file(cls, path, references, protocol: EvalProtocol,
                  weights_key: str = "W") -> ActivitySubject:
        """Validate ``path`` against the evaluation trials of ``references`` (fails early)."""
        path = Path(path).expanduser().resolve()
        trial_sets = evaluation_trials(references, protocol)
        blocks = trial_blocks(trial_sets)
        subject = cls(str(path), "", blocks, trial_sets[0][1].n_steps, weights_key)
        subject._read()
        return cls(str(path), file_digest(path), blocks, subject.n_steps, weights_key)

    def _read(self):
        return read_submission(self.path, self.blocks[-1].stop, self.n_steps, self.weights_key,
                               self.blocks)

    def identity(self) -> dict:
        return {"kind": "activity", "sha256": self.sha256, "weights_key": self.weights_key,
                "blocks": [[b.reference, b.digest] for b in self.blocks]}

    def describe(self) -> str:
        return f"activity {Path(self.path).name} ({self.sha256[:12]})"

    def load(self) -> ActivitySystem:
        if not Path(self.path).is_file():
            raise HdbenchError(f"activity file {self.path} not found")
        if file_digest(self.path) != self.sha256:
            raise HdbenchError(f"activity file {self.path} changed after it was planned for "
                               "scoring; run again")
        return ActivitySystem(*self._read(), self.blocks)


@dataclass(frozen=True, eq=False)
class InMemorySubject:
    """A system object held in memory (a notebook's model), identified by its behaviour
    (:func:`hdbench.user_models.behaviour_digest`). Scored in this process, or pickled to
    worker processes with ``jobs > 1``."""

    system: object
    name: str
    behaviour: str

    @classmethod
    def of(cls, system, name: str) -> InMemorySubject:
        checked = as_user_system(system, name)
        return cls(checked, name, behaviour_digest(checked))

    def identity(self) -> dict:
        return {"kind": "in-memory", "behaviour": self.behaviour}

    def describe(self) -> str:
        return f"{self.name} ({type(self.system).__name__}, {self.behaviour[:12]})"

    def load(self):
        return self.system
