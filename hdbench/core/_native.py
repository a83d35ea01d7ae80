"""The compiled loops (``_loop.cpp``, ``_gated.cpp``, ``_kernels.h``): built on first use, optional.

:func:`ops` returns the loaded operators (``torch.ops.hdbench_core``) or None, in which case
:mod:`hdbench.core.dynamics` runs its PyTorch loop (same semantics; see ``integrate``) and the
gated baselines run ``torch.nn``:

- ``HDBENCH_NO_EXTENSION=1`` (or :func:`set_enabled` ``(False)``) turns the compiled loop off;
- a failed build (no compiler, no ninja, a compile error) falls back with one warning.

The library is compiled once per environment with ``torch.utils.cpp_extension.load`` (about half
a minute) under ``$HDBENCH_HOME/torch_extensions`` (default ``~/.cache/hdbench``), in a folder
named by Python, torch and C++ ABI so that environments never share a binary
(``TORCH_EXTENSIONS_DIR`` overrides the root); ninja rebuilds it when a source or the header
changes.
torch's file lock makes concurrent first builds (threads, processes, engine workers) safe: one
compiles, the others wait and load its result; a lock left by a killed build is removed after
:data:`STALE_LOCK_SECONDS`. Later processes only load it (a ninja up-to-date check, ~0.1 s).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import threading
import time
import warnings
from pathlib import Path

import torch

SOURCES = [Path(__file__).with_name(name) for name in ("_loop.cpp", "_gated.cpp")]
NAME = "hdbench_core_loop"
# -O3 without -march: the elementwise passes are cloned per ISA inside the source. No fast-math:
# -ffp-contract=off keeps clones bit-identical; -fno-trapping-math lets selects vectorise (as
# torch's own build).
CFLAGS = ["-O3", "-ffp-contract=off", "-fno-trapping-math", "-fno-math-errno"]
ACTIVATIONS = {"retanh": 0, "tanh": 1, "relu": 2, "linear": 3, "softplus": 4}
TANH_FROM_RATES = {"retanh": 5, "tanh": 6}  # backward slopes from the rates (_loop.cpp)

STALE_LOCK_SECONDS = 600  # a build takes well under a minute

_lock = threading.Lock()
_state: dict = {"loaded": False, "ops": None, "error": None, "build_seconds": None}
_enabled = True


def build_directory() -> Path:
    root = os.environ.get("TORCH_EXTENSIONS_DIR")
    if root is None:
        from hdbench.home import default_root

        root = default_root() / "torch_extensions"
    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    tag = (f"py{sys.version_info.major}{sys.version_info.minor}-torch{torch.__version__}-abi{abi}"
           .replace("+", "_"))
    return Path(root) / tag / NAME


def disabled_by_environment() -> bool:
    return os.environ.get("HDBENCH_NO_EXTENSION", "").strip() not in ("", "0")


def set_enabled(flag: bool) -> bool:
    """Use the compiled loop when available (True, the default) or always the PyTorch loop;
    returns the previous setting."""
    global _enabled
    previous, _enabled = _enabled, bool(flag)
    return previous


@contextlib.contextmanager
def enabled(flag: bool):
    """:func:`set_enabled` for a ``with`` block; the previous setting comes back after it."""
    previous = set_enabled(flag)
    try:
        yield
    finally:
        set_enabled(previous)


def _ninja_on_path() -> None:
    """torch calls ``ninja`` by name: put the pip-installed one on PATH when the environment's
    bin folder is not there (a venv used without activation)."""
    if shutil.which("ninja") is not None:
        return
    try:
        import ninja
    except ImportError:
        return  # the build fails with torch's message and the PyTorch loop is used
    os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")


def _load():
    from torch.utils import cpp_extension

    _ninja_on_path()
    directory = build_directory()
    directory.mkdir(parents=True, exist_ok=True)
    lock = directory / "lock"  # torch's FileBaton waits forever on a lock a killed build left
    try:
        if time.time() - lock.stat().st_mtime > STALE_LOCK_SECONDS:
            lock.unlink()
    except FileNotFoundError:
        pass
    start = time.perf_counter()
    cpp_extension.load(name=NAME, sources=[str(source) for source in SOURCES], extra_cflags=CFLAGS,
                       build_directory=str(directory), is_python_module=False, verbose=False)
    _state["build_seconds"] = time.perf_counter() - start
    return torch.ops.hdbench_core


def _summary(error: Exception) -> str:
    """One line of a build error: its first line and the compiler's first complaint."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    first = lines[0].split(": [", 1)[0]  # torch: "Error building extension 'x': [1/2] <command>"
    detail = next((line for line in lines[1:] if "error" in line.lower()
                   or "not found" in line.lower()), None)
    text = first if detail is None else f"{first}: {detail}"
    return text if len(text) <= 300 else text[:297] + "..."


def ops():
    """The compiled loop's operators, or None (disabled, or the build failed: warned once)."""
    if not _enabled or disabled_by_environment():
        return None
    if not _state["loaded"]:
        with _lock:
            if not _state["loaded"]:
                try:
                    _state["ops"] = _load()
                except Exception as error:  # no compiler or ninja, compile or load error
                    _state["error"] = f"{type(error).__name__}: {error}"
                    warnings.warn(f"hdbench: compiled integration loop unavailable, using the "
                                  f"PyTorch loop ({_summary(error)}; HDBENCH_NO_EXTENSION=1 "
                                  f"skips the build)", RuntimeWarning, stacklevel=4)
                _state["loaded"] = True
    return _state["ops"]


def for_call(activation: str, tensor: torch.Tensor):
    """The operators if this call can use them (CPU, float32/64, a compiled activation)."""
    if (activation not in ACTIVATIONS or tensor.device.type != "cpu"
            or tensor.dtype not in (torch.float32, torch.float64)):
        return None
    return ops()


def status() -> dict:
    """Whether the compiled loop is in use, and why not; the last load's seconds (a build or an
    up-to-date check)."""
    loaded = ops()
    return {"available": loaded is not None, "enabled": _enabled,
            "disabled_by_environment": disabled_by_environment(), "error": _state["error"],
            "load_seconds": _state["build_seconds"], "build_directory": str(build_directory()),
            "direct_blas": bool(loaded.direct_blas(0)) if loaded is not None else None}
