"""Where work runs: in this process, in local worker processes (joblib), or on a Dask cluster.

Every job is a pure function of a frozen config: ``job.fn(job.config)`` computes a result and
writes nothing shared. Results come back to the driver as they complete, and only the driver
writes them down (see :mod:`hdbench.store`), so concurrent workers can never corrupt the store.
A job that raises is returned as a failed :class:`JobResult` carrying the error's type, message
and traceback; the other jobs go on.

Workers die with the driver: each local worker watches the driver's process id and exits within
:data:`WATCHDOG_PERIOD` seconds once it is gone (SIGKILL included), and the driver turns SIGTERM
into an interrupt that shuts its workers down before it exits.

Engines
-------
- ``n_jobs=1`` (default): one job after another in this process (no pickling; easiest to
  debug). The torch thread count is left as the caller set it.
- ``n_jobs=N > 1``: ``joblib`` worker processes on this machine (loky backend); each worker
  runs ``torch.set_num_threads(1)``, so N jobs use N cores.
- ``dask_scheduler="tcp://host:port"``: the jobs are submitted to a running Dask scheduler
  (``distributed.LocalCluster``, ``dask-jobqueue`` SLURM/PBS clusters, ...); each worker runs
  ``torch.set_num_threads(1)``. The workers need hdbench installed and must see any paths the
  jobs name (e.g. trained models under ``$HDBENCH_HOME``: use a shared filesystem).
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from hdbench.errors import HdbenchError

DASK_CONNECT_TIMEOUT = "20s"
WATCHDOG_PERIOD = 1.0  # seconds between a worker's checks that its driver is alive
_watched: dict = {}


@dataclass(frozen=True)
class Job:
    """``fn(config)`` under a unique ``key``; ``fn`` must be a module-level function."""

    key: str
    fn: Callable[[Any], Any]
    config: Any
    label: str = ""

    def describe(self) -> str:
        return self.label or self.key


@dataclass
class JobResult:
    """What came back for one job: its value, or the error it raised."""

    key: str
    label: str
    ok: bool
    value: Any = None
    error: dict | None = None
    wall_s: float = math.nan
    worker: dict = field(default_factory=dict)


def error_info(err: BaseException) -> dict:
    """JSON-ready description of an exception: type, message, traceback text."""
    import traceback

    return {"type": type(err).__name__, "message": str(err),
            "traceback": "".join(traceback.format_exception(err))}


def worker_info() -> dict:
    """Where a job ran: platform, Python, process id, torch threads (if torch is loaded)."""
    info = {"platform": platform.platform(), "machine": platform.machine(),
            "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "pid": os.getpid()}
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    return info


def _driver_alive(pid: int) -> bool:
    if os.getppid() == 1:  # re-parented to init: the process that started us is gone
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def watch_driver(pid: int, period: float = WATCHDOG_PERIOD) -> None:
    """In a worker process: exit (``os._exit``) as soon as process ``pid`` is gone.

    Started once per worker; a job still running is abandoned, since nobody is left to receive
    its result (the driver stores results, workers never write).
    """
    if pid == os.getpid() or _watched.get("pid") == pid:
        return

    def loop():
        while _driver_alive(pid):
            time.sleep(period)
        os._exit(3)

    _watched["pid"] = pid
    threading.Thread(target=loop, name="hdbench-driver-watchdog", daemon=True).start()


def execute(job: Job, single_thread: bool = False, driver_pid: int | None = None) -> JobResult:
    """Run one job, turning any exception into a failed result (KeyboardInterrupt passes).

    ``driver_pid``: in a worker process, the driver to watch (:func:`watch_driver`).
    """
    if driver_pid is not None:
        watch_driver(driver_pid)
    if single_thread:
        import torch

        torch.set_num_threads(1)
    from hdbench.core.allocator import keep_large_allocations

    keep_large_allocations()
    start = time.perf_counter()
    try:
        value = job.fn(job.config)
    except Exception as err:  # a failing job is recorded; the others go on
        return JobResult(job.key, job.label, ok=False, error=error_info(err),
                         wall_s=time.perf_counter() - start, worker=worker_info())
    return JobResult(job.key, job.label, ok=True, value=value,
                     wall_s=time.perf_counter() - start, worker=worker_info())


def _check(jobs: list[Job], n_jobs: int) -> None:
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise HdbenchError(f"n_jobs must be a positive integer; got {n_jobs!r}")
    keys = [job.key for job in jobs]
    if len(set(keys)) != len(keys):
        duplicate = next(k for k in keys if keys.count(k) > 1)
        raise HdbenchError(f"job keys must be unique; {duplicate!r} appears twice")


def _local(jobs: list[Job], n_jobs: int) -> Iterator[JobResult]:
    if n_jobs == 1 or len(jobs) <= 1:
        for job in jobs:
            yield execute(job)
        return
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=min(n_jobs, len(jobs)), return_as="generator_unordered")
    driver = os.getpid()
    try:
        yield from parallel(delayed(execute)(job, True, driver) for job in jobs)
    except BaseException:
        _kill_local_workers()
        raise


def _kill_local_workers() -> None:
    """Stop the local worker processes now (on an interrupt: no job is left to finish)."""
    from joblib.externals.loky import get_reusable_executor

    with contextlib.suppress(Exception):
        get_reusable_executor().shutdown(wait=False, kill_workers=True)


@contextlib.contextmanager
def _sigterm_interrupts():
    """In the main thread: SIGTERM raises KeyboardInterrupt, so that the driver shuts its
    workers down and its ``finally`` blocks run (a no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _dask(jobs: list[Job], address) -> Iterator[JobResult]:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise HdbenchError("the Dask engine needs dask and distributed: "
                           "pip install 'hdbench[dask]'") from None
    try:
        client = Client(address, timeout=DASK_CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as err:
        raise HdbenchError(f"cannot reach the Dask scheduler at {address!r}: {err}") from None
    with client:
        futures = client.map(execute, jobs, single_thread=True, pure=False)
        by_future = dict(zip(futures, jobs, strict=True))
        for future in as_completed(futures):
            try:
                yield future.result()
            except Exception as err:  # the worker died (KilledWorker, lost connection, ...)
                job = by_future[future]
                yield JobResult(job.key, job.label, ok=False, error=error_info(err))


def iter_jobs(jobs: Iterable[Job], n_jobs: int = 1, dask_scheduler: str | None = None,
              progress: bool = True, desc: str = "jobs") -> Iterator[JobResult]:
    """Yield each job's :class:`JobResult` as it completes (any order), with a progress bar."""
    jobs = list(jobs)
    _check(jobs, n_jobs)
    if not jobs:
        return
    results = _dask(jobs, dask_scheduler) if dask_scheduler else _local(jobs, n_jobs)
    from tqdm.auto import tqdm

    with _sigterm_interrupts(), tqdm(total=len(jobs), desc=desc, unit="job", dynamic_ncols=True,
                                     disable=None if progress else True) as bar:
        for result in results:
            bar.update(1)
            if not result.ok:
                bar.write(f"{desc}: {result.label or result.key} failed: "
                          f"{result.error['type']}: {result.error['message']}",
                          file=sys.stderr)
            yield result


def run_jobs(jobs: Iterable[Job], n_jobs: int = 1, dask_scheduler: str | None = None,
             progress: bool = True, dry_run: bool = False,
             on_result: Callable[[JobResult], None] | None = None, desc: str = "jobs",
             out=None) -> list[JobResult]:
    """Run ``jobs`` and return their results in the order of ``jobs``.

    Parameters
    ----------
    jobs : iterable of Job
        Keys must be unique.
    n_jobs : int
        Local worker processes (1 = in this process).
    dask_scheduler : str, optional
        Address of a Dask scheduler; overrides ``n_jobs``.
    progress : bool
        Progress bar with ETA (off automatically when not on a terminal).
    dry_run : bool
        Print one line per job that would run (to ``out``, default stdout); run nothing and
        return ``[]``.
    on_result : callable, optional
        Called in the driver with each result as soon as it arrives (e.g. to store it), so that
        an interrupted run keeps everything finished so far.
    """
    jobs = list(jobs)
    _check(jobs, n_jobs)
    if dry_run:
        out = sys.stdout if out is None else out
        for job in jobs:
            print(f"would run: {job.describe()}", file=out)
        return []
    order = {job.key: i for i, job in enumerate(jobs)}
    results: list[JobResult | None] = [None] * len(jobs)
    for result in iter_jobs(jobs, n_jobs=n_jobs, dask_scheduler=dask_scheduler,
                            progress=progress, desc=desc):
        results[order[result.key]] = result
        if on_result is not None:
            on_result(result)
    return results
