import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hdbench.engine import Job, execute, run_jobs
from hdbench.errors import HdbenchError
from tests import fakes


def jobs_of(values, fn=fakes.fail_if_negative):
    return [Job(key=f"j{i}", fn=fn, config=v, label=f"job {v}") for i, v in enumerate(values)]


@pytest.fixture(scope="module", autouse=True)
def stop_local_workers():
    yield
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)


def test_in_process_results_come_back_in_job_order():
    seen = []
    results = run_jobs(jobs_of([3, 1, 2], fakes.square), progress=False, on_result=seen.append)
    assert [r.value for r in results] == [9, 1, 4]
    assert all(r.ok and r.wall_s >= 0 for r in results)
    assert sorted(r.key for r in seen) == ["j0", "j1", "j2"]
    assert results[0].worker["pid"] == os.getpid()


def test_a_failing_job_is_recorded_and_the_others_go_on():
    results = run_jobs(jobs_of([1, -2, 3]), progress=False)
    assert [r.ok for r in results] == [True, False, True]
    assert [r.value for r in results] == [1, None, 3]
    error = results[1].error
    assert error["type"] == "ValueError" and error["message"] == "negative input -2"
    assert "fail_if_negative" in error["traceback"]


def test_keyboard_interrupt_is_not_swallowed():
    def interrupt(_):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        execute(Job("k", interrupt, None))


def test_local_processes_use_one_thread_each():
    jobs = jobs_of([1, -1, 2, 3]) + [Job("threads", fakes.torch_threads, None)]
    results = run_jobs(jobs, n_jobs=2, progress=False)
    assert [r.ok for r in results] == [True, False, True, True, True]
    assert [r.value for r in results[:4]] == [1, None, 2, 3]
    assert results[4].value == 1
    assert all(r.worker["pid"] != os.getpid() for r in results)


def test_dry_run_lists_and_runs_nothing():
    out = io.StringIO()
    seen = []
    assert run_jobs(jobs_of([1, 2]), dry_run=True, on_result=seen.append, out=out) == []
    assert out.getvalue() == "would run: job 1\nwould run: job 2\n" and seen == []


def test_bad_arguments_are_clear_errors():
    with pytest.raises(HdbenchError, match="n_jobs"):
        run_jobs(jobs_of([1]), n_jobs=0)
    with pytest.raises(HdbenchError, match="unique"):
        run_jobs([Job("same", fakes.square, 1), Job("same", fakes.square, 2)])
    assert run_jobs([], progress=False) == []


def test_dask_cluster_on_loopback():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(host="127.0.0.1", n_workers=1, threads_per_worker=2,
                                  processes=True, dashboard_address=None) as cluster:
        jobs = jobs_of([2, -5, 4]) + [Job("threads", fakes.torch_threads, None)]
        seen = []
        results = run_jobs(jobs, dask_scheduler=cluster.scheduler_address, progress=False,
                           on_result=seen.append)
    assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
    assert [r.ok for r in results] == [True, False, True, True]
    assert results[0].value == 2 and results[2].value == 4 and results[3].value == 1
    assert results[1].error["type"] == "ValueError"
    assert len(seen) == 4


def test_unreachable_dask_scheduler_is_a_clear_error(monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr("hdbench.engine.DASK_CONNECT_TIMEOUT", "1s")
    with pytest.raises(HdbenchError, match="Dask scheduler"):
        run_jobs(jobs_of([1]), dask_scheduler="tcp://127.0.0.1:9", progress=False)


_DRIVER = """
import sys
from hdbench.engine import Job, run_jobs
from tests import fakes

folder = sys.argv[1]
jobs = [Job(f"s{i}", fakes.sleep_and_report, f"{folder}/worker{i}.pid") for i in range(2)]
run_jobs(jobs, n_jobs=2, progress=False)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) is dead
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_workers_die_with_the_driver(tmp_path, how):
    """Killing the driver (kill -9 included) leaves no worker process running its jobs."""
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    driver = subprocess.Popen([sys.executable, "-c", _DRIVER, str(tmp_path)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pid_files = [tmp_path / f"worker{i}.pid" for i in range(2)]
    deadline = time.monotonic() + 120
    while not all(p.exists() and p.read_text() for p in pid_files):
        assert driver.poll() is None, driver.stderr.read().decode()
        assert time.monotonic() < deadline, "workers did not start"
        time.sleep(0.2)
    workers = [int(p.read_text()) for p in pid_files]
    assert all(_alive(pid) for pid in workers)
    driver.send_signal(how)
    driver.wait(timeout=60)
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    survivors = [pid for pid in workers if _alive(pid)]
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert not survivors, f"workers {survivors} outlived their driver"
