"""A training run directory, read once (:class:`Run`), and one way to name any system
(:func:`load_system`).

A run directory (written by :func:`hdbench.training.train`) holds

- ``config.json``   ``{"config": TrainConfig fields, "run_hash", "code": component versions}``;
- ``checkpoint.pt`` the resumable state (while training, and after);
- ``history.csv``   per-update loss and NE;
- ``model.pt``      the selected model (lowest validation NE), written at the end;
- ``metrics.json``  test NE and run facts (``status``: ``finished`` or ``diverged``);
- ``recorded.json`` with a teacher only (:mod:`hdbench.training.recordings`).

While a process trains into a run directory it holds the directory's lock (:func:`run_lock`),
a file under ``$HDBENCH_HOME/locks/runs`` named by the directory's absolute path, so that a
second process is refused before it touches the folder and nothing is left in the folder.

Every reader goes through :class:`Run`, so a garbled or foreign file gives one clear error.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from hdbench.errors import HdbenchError

CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.pt"
HISTORY_FILE = "history.csv"
MODEL_FILE = "model.pt"
METRICS_FILE = "metrics.json"
# The files of a finished run (what the run cache and the committed zoo keep).
RUN_FILES = (CONFIG_FILE, MODEL_FILE, HISTORY_FILE, METRICS_FILE)


def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise HdbenchError(f"{path} not found") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise HdbenchError(f"{path} is not readable JSON ({type(err).__name__}); "
                           f"the {what} is damaged") from None
    if not isinstance(data, dict):
        raise HdbenchError(f"{path} does not hold a JSON object; the {what} is damaged")
    return data


def holds_files(folder) -> bool:
    """Whether ``folder`` exists and holds anything besides temporaries of atomic writes."""
    folder = Path(folder)
    if not folder.is_dir():
        return False
    return any(not p.name.endswith(".tmp") for p in folder.iterdir())


def run_lock(run_dir):
    """The inter-process lock of a run directory (not yet acquired)."""
    import hashlib

    from hdbench.home import default_root
    from hdbench.locks import ProcessLock

    resolved = str(Path(run_dir).expanduser().resolve())
    name = hashlib.sha256(resolved.encode()).hexdigest()[:24]
    return ProcessLock(default_root() / "locks" / "runs" / f"{name}.lock",
                       f"run directory {run_dir}")


@dataclass(frozen=True)
class Run:
    """One training run directory: its config, status, metrics and model.

    Load with :meth:`Run.load`; every problem with the files is a one-line
    :class:`~hdbench.errors.HdbenchError` naming the file.
    """

    path: Path
    config: object  # TrainConfig
    stored_hash: str | None
    stored_code: dict | None

    @classmethod
    def load(cls, path) -> Run:
        from hdbench.training.config import TrainConfig

        path = Path(path)
        if path.is_file() and path.name == MODEL_FILE:
            path = path.parent
        if not path.exists():
            raise HdbenchError(f"{path} is not a training run (no such folder)")
        if not path.is_dir():
            raise HdbenchError(f"{path} is not a training run (not a folder)")
        config_file = path / CONFIG_FILE
        if not config_file.is_file():
            raise HdbenchError(f"{path} is not a training run (no {CONFIG_FILE})")
        data = _read_json(config_file, "run's config")
        if not isinstance(data.get("config"), dict):
            raise HdbenchError(f"{config_file} has no 'config' object; the run's config is "
                               "damaged")
        try:
            config = TrainConfig.from_dict(data["config"])
        except HdbenchError as err:
            raise HdbenchError(f"{config_file}: {err}") from None
        except (TypeError, ValueError) as err:
            raise HdbenchError(f"{config_file}: invalid training config ({err})") from None
        code = data.get("code") if isinstance(data.get("code"), dict) else None
        stored = data.get("run_hash") if isinstance(data.get("run_hash"), str) else None
        return cls(path, config, stored, code)

    # -- identity ---------------------------------------------------------------------------
    @property
    def run_hash(self) -> str:
        """The run hash of its config under today's code (component versions)."""
        return self.config.run_hash()

    def matches_code(self) -> bool:
        """Whether the run was made by code with today's training component versions."""
        return self.stored_hash == self.run_hash

    def code_mismatch(self) -> str:
        """Why the run does not match today's code (empty when it does)."""
        if self.matches_code():
            return ""
        from hdbench.versions import training_identity

        if self.stored_code is None:
            return (f"{self.path} was trained by an hdbench without component versions (run "
                    f"hash {self.stored_hash}, today {self.run_hash})")
        changed = [f"{k} {self.stored_code.get(k)} -> {v}"
                   for k, v in training_identity().items() if self.stored_code.get(k) != v]
        return (f"{self.path} was trained by other code ({', '.join(changed) or 'other hash'}; "
                f"run hash {self.stored_hash}, today {self.run_hash})")

    # -- contents ---------------------------------------------------------------------------
    @property
    def task(self) -> str:
        return self.config.task

    def metrics(self) -> dict | None:
        """``metrics.json`` (None while the run is unfinished)."""
        path = self.path / METRICS_FILE
        if not path.exists():
            return None
        data = _read_json(path, "run's metrics")
        test_ne = data.get("test_ne")
        if test_ne is not None and not isinstance(test_ne, (int, float)):
            raise HdbenchError(f"{path}: test_ne is not a number; the run's metrics are damaged")
        return data

    @property
    def status(self) -> str:
        """``finished`` (model.pt and metrics.json), ``diverged`` (training stopped on a
        non-finite loss), ``in progress`` (a checkpoint, no model yet) or ``new``."""
        metrics = self.metrics()
        if metrics is not None and metrics.get("status") == "diverged":
            return "diverged"
        if metrics is not None and (self.path / MODEL_FILE).is_file():
            return "finished"
        if (self.path / CHECKPOINT_FILE).is_file():
            return "in progress"
        return "new"

    @property
    def finished(self) -> bool:
        return (self.path / MODEL_FILE).is_file() and self.metrics() is not None

    def test_ne(self) -> float:
        metrics = self.metrics() or {}
        value = metrics.get("test_ne")
        return float(value) if value is not None else math.nan

    def model(self):
        """The selected model, in eval mode."""
        return load_model(self.path / MODEL_FILE)


def load_model(path):
    """The model saved in ``model.pt`` (or in a run directory's), in eval mode."""
    from hdbench.models import build
    from hdbench.training import checkpoint

    path = Path(path)
    path = path / MODEL_FILE if path.is_dir() else path
    if not path.exists():
        raise HdbenchError(f"{path} not found: is this a finished training run?")
    saved = checkpoint.load(path, kind="model")
    missing = [key for key in ("model", "model_options", "state") if key not in saved]
    if missing:
        raise HdbenchError(f"{path} lacks {', '.join(missing)}; the model file is damaged")
    try:
        options = json.loads(saved["model_options"])
    except (TypeError, ValueError):
        raise HdbenchError(f"{path}: model_options is not JSON; the model file is "
                           "damaged") from None
    if not isinstance(options, dict):
        raise HdbenchError(f"{path}: model_options is not a JSON object")
    model = build(saved["model"], **options)
    try:
        model.load_state_dict(saved["state"])
    except (RuntimeError, TypeError, KeyError) as err:
        raise HdbenchError(f"{path} does not match its model config: "
                           f"{str(err).splitlines()[0]}") from None
    return model.eval()


# -- naming any system ---------------------------------------------------------------------------

@dataclass(frozen=True)
class LoadedSystem:
    """A system with what is known about it: its own task preset (None when it has none),
    a display name and its kind (``reference``, ``run`` or ``user``)."""

    system: object
    task: str | None
    name: str
    kind: str


def _zoo_folders() -> list[Path]:
    """Where zoo ids are looked up: ``./results/zoo`` and the checkout's ``results/zoo``."""
    here = Path(__file__).resolve().parent.parent / "results" / "zoo"
    return list(dict.fromkeys([Path("results") / "zoo", here]))


def load_system(spec, *, noise_free: bool = True) -> LoadedSystem:
    """The system named by ``spec``.

    ``spec`` is a reference-circuit name (``fly``; built noise-free unless ``noise_free`` is
    False), a run directory or its ``model.pt``, a zoo run id (``ctrnn-seed0``, looked up in
    ``results/zoo``) or ``path/to/file.py:factory`` (a user's system, wrapped so that its
    activity is checked; see :mod:`hdbench.user_models`). A user's system has no task of its
    own (``task`` is None): callers must ask for one rather than assume a default.
    """
    import reference_circuits

    text = str(spec)
    if not text:
        raise HdbenchError("empty system name: give a reference circuit, a run directory, a "
                           "zoo run id or path/to/file.py:factory")
    if text in reference_circuits.available():
        from hdbench.task import PRESETS

        options = {"noise_std": 0.0} if noise_free else {}
        system = reference_circuits.load(text, **options)
        task = getattr(system, "task", None)
        task = task if isinstance(task, str) else (text if text in PRESETS else None)
        return LoadedSystem(system, task, text, "reference")
    if ".py:" in text:
        from hdbench.user_models import load_factory, parse_model_spec

        _, path, factory = parse_model_spec(text)
        return LoadedSystem(load_factory(path, factory), None, text, "user")
    path = Path(text).expanduser()
    if not path.exists() and "/" not in text:
        for folder in _zoo_folders():
            if (folder / text).is_dir():
                path = folder / text
                break
    if path.exists():
        run = Run.load(path)
        return LoadedSystem(run.model(), run.task, text, "run")
    raise HdbenchError(f"{text!r} is not a reference circuit "
                       f"({', '.join(reference_circuits.available())}), a run directory, a zoo "
                       "run id in results/zoo or path/to/file.py:factory")
