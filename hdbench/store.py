"""The run cache: one JSON (with provenance) per finished training run or benchmark score.

Location: ``$HDBENCH_HOME`` if set, else ``$XDG_CACHE_HOME/hdbench``, else ``~/.cache/hdbench``.
Layout::

    runs/<run-hash>/          config.json, model.pt, history.csv, metrics.json and, written
                              last, record.json (provenance): a run counts as done once
                              record.json exists
    scores/<benchmark-id>/v<version>/<subject-key>.json
                              one benchmark's raw value for one subject (a trained run, an
                              untrained network, a reference instance) under one evaluation
                              protocol; ceilings and floors are scores of the reference's second
                              instance and of the untrained default network
    failures/...              the same paths for jobs that raised: error type, message and
                              traceback; removed when the job later succeeds
    scratch/<run-hash>/       a training job's private working directory (resumable after an
                              interruption); removed once the run is stored
    locks/<job-key>.lock      held by the process computing that job (released by the OS when
                              it dies): a second process waits for it instead of computing the
                              same result or removing its scratch folder

Keys: ``<run-hash>`` is :meth:`TrainConfig.run_hash` (the config and the training components'
versions, :mod:`hdbench.versions`); ``<subject-key>`` is
:func:`hdbench.scoring.subjects.score_key` (the subject's identity and weights or behaviour,
the reference's circuit version, the protocol and the measuring components' versions); the
benchmark version is part of the path. So a changed config, code component, model, protocol or
benchmark computes new results instead of reusing stale ones.

Only a driver writes here (:mod:`hdbench.engine` workers return results, they never write),
under the job's lock, and every file is written atomically: an interrupted run leaves complete
files or none, and the next run computes only what is missing. Failed jobs are recorded and, by
default, retried on the next run.
"""

from __future__ import annotations

import functools
import json
import math
import platform
import shutil
import subprocess
import warnings
from datetime import UTC, datetime
from pathlib import Path

from hdbench._version import __version__
from hdbench.atomic import atomic_write_bytes, atomic_write_text
from hdbench.errors import HdbenchError
from hdbench.home import default_root
from hdbench.locks import ProcessLock
from hdbench.runs import RUN_FILES

SCHEMA = 1


def jsonable(obj):
    """``obj`` with NaN and infinities replaced by None (strict JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj


def dumps(obj) -> str:
    return json.dumps(jsonable(obj), indent=2, sort_keys=True, allow_nan=False) + "\n"


@functools.lru_cache(maxsize=1)
def git_state() -> dict | None:
    """``{"commit", "dirty"}`` of the git checkout hdbench is imported from, or None."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"],
                                capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return None
        status = subprocess.run(["git", "-C", str(here), "status", "--porcelain",
                                 "--untracked-files=no"], capture_output=True, text=True,
                                timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def provenance(**extra) -> dict:
    """Who computed a result, where and when (plus ``extra`` entries such as wall time)."""
    import numpy

    info = {"hdbench_version": __version__, "git": git_state(),
            "python": platform.python_version(), "platform": platform.platform(),
            "numpy": numpy.__version__,
            "created": datetime.now(UTC).isoformat(timespec="seconds")}
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:
        pass
    info.update(extra)
    return info


class Store:
    """The run cache rooted at ``root`` (default :func:`default_root`)."""

    def __init__(self, root=None):
        self.root = Path(root).expanduser() if root is not None else default_root()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # -- paths -------------------------------------------------------------------------------
    def run_dir(self, run_hash: str) -> Path:
        return self.root / "runs" / run_hash

    def score_path(self, benchmark_id: str, version: int, subject_key: str) -> Path:
        return self.root / "scores" / benchmark_id / f"v{int(version)}" / f"{subject_key}.json"

    def failure_path(self, path: Path) -> Path:
        """Where the failure of the job that would write ``path`` is recorded."""
        relative = Path(path).relative_to(self.root)
        if relative.parts[0] == "runs":
            relative = Path("runs") / f"{relative.parts[1]}.json"
        return self.root / "failures" / relative

    def scratch_dir(self, key: str) -> Path:
        return self.root / "scratch" / key

    def lock(self, key: str, what: str = "") -> ProcessLock:
        """The inter-process lock of job ``key`` (not yet acquired)."""
        return ProcessLock(self.root / "locks" / f"{key}.lock", what or f"cache job {key}")

    # -- reading -----------------------------------------------------------------------------
    def _read_json(self, path: Path) -> dict | None:
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            warnings.warn(f"ignoring unreadable cache file {path} ({err}); it will be "
                          "recomputed", stacklevel=3)
            return None
        if not isinstance(record, dict) or record.get("schema") != SCHEMA:
            warnings.warn(f"ignoring cache file {path} (not an hdbench schema-{SCHEMA} record); "
                          "it will be recomputed", stacklevel=3)
            return None
        return record

    def has_run(self, run_hash: str) -> bool:
        """A finished, stored training run (its record.json is written last)."""
        run = self.run_dir(run_hash)
        return self._read_json(run / "record.json") is not None and \
            all((run / name).is_file() for name in RUN_FILES)

    def read_score(self, benchmark_id: str, version: int, subject_key: str) -> dict | None:
        """The stored score record, or None when missing (or unreadable: then recomputed)."""
        record = self._read_json(self.score_path(benchmark_id, version, subject_key))
        if record is None:
            return None
        if record.get("benchmark", {}).get("id") != benchmark_id or \
                record.get("benchmark", {}).get("version") != version or \
                record.get("subject_key") != subject_key:
            warnings.warn(f"ignoring misplaced cache file "
                          f"{self.score_path(benchmark_id, version, subject_key)}", stacklevel=2)
            return None
        return record

    def read_failure(self, path: Path) -> dict | None:
        return self._read_json(self.failure_path(path))

    def iter_scores(self):
        """Every stored score record."""
        for path in sorted((self.root / "scores").glob("*/v*/*.json")):
            record = self._read_json(path)
            if record is not None:
                yield record

    # -- writing (driver only) ---------------------------------------------------------------
    def _write(self, path: Path, record: dict) -> Path:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, dumps({"schema": SCHEMA, **record}))
        except OSError as err:
            raise HdbenchError(f"cannot write to the cache at {path}: {err.strerror} "
                               "(set HDBENCH_HOME to a writable folder)") from None
        self.clear_failure(path)
        return path

    def write_score(self, benchmark_id: str, version: int, subject_key: str,
                    record: dict) -> Path:
        return self._write(self.score_path(benchmark_id, version, subject_key),
                           {**record, "subject_key": subject_key})

    def write_run(self, run_hash: str, files: dict[str, bytes], record: dict) -> Path:
        """Store a finished training run: its files, then record.json (which marks it done)."""
        missing = [name for name in RUN_FILES if name not in files]
        if missing:
            raise HdbenchError(f"training run {run_hash} is missing {', '.join(missing)}")
        run = self.run_dir(run_hash)
        try:
            run.mkdir(parents=True, exist_ok=True)
            for name in RUN_FILES:
                atomic_write_bytes(run / name, files[name])
        except OSError as err:
            raise HdbenchError(f"cannot write to the cache at {run}: {err.strerror} "
                               "(set HDBENCH_HOME to a writable folder)") from None
        self._write(run / "record.json", {**record, "run_hash": run_hash})
        shutil.rmtree(self.scratch_dir(run_hash), ignore_errors=True)
        return run

    def write_failure(self, path: Path, record: dict) -> Path:
        """Record that the job meant to write ``path`` failed (``record`` has the error)."""
        target = self.failure_path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target, dumps({"schema": SCHEMA, **record}))
        return target

    def clear_failure(self, path: Path) -> None:
        if Path(path).is_relative_to(self.root / "failures"):
            return
        self.failure_path(path).unlink(missing_ok=True)
