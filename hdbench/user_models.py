"""A user's system: loaded from ``path/to/file.py:factory``, its activity checked, and
identified by what it does.

- :func:`load_factory` imports the file (its folder on ``sys.path`` while it loads), calls the
  factory without arguments and wraps the result in :class:`UserSystem`.
- :class:`UserSystem` checks everything ``simulate`` returns (shape, finite, real, not so large
  that float64 arithmetic overflows) and turns a missing ``silence=`` or ``recurrent_weights()``
  into :class:`~hdbench.errors.NotComputableError`.
- :func:`behaviour_digest` fingerprints a system by its rates and outputs on a fixed probe
  batch and by its weights: a model retrained in place gets a new fingerprint, so its cached
  scores are never reused (a file hash would miss new weights loaded by the same file).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import inspect
import re
import sys
from pathlib import Path

import numpy as np

from hdbench.errors import HdbenchError, NotComputableError
from hdbench.system import MAX_MAGNITUDE

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The probe batch of behaviour_digest: a few trials of the default task, shortened.
PROBE_TRIALS, PROBE_STEPS, PROBE_SEED = 4, 120, 20_261_205
# Digits kept when fingerprinting (relative to the largest value): tolerates the last-bit
# differences of threaded BLAS, catches any real change of behaviour.
PROBE_DIGITS = 6


def check_array(name: str, array, label: str, shape=None, expected: str = "") -> np.ndarray:
    """``array`` as a real float64 array, or a one-line error: wrong shape, complex, NaN, inf,
    or values beyond :data:`MAX_MAGNITUDE`."""
    try:
        array = np.asarray(array)
    except Exception as err:  # a tensor on another device, an odd object
        raise HdbenchError(f"{label}: {name} is not an array ({type(err).__name__})") from None
    if shape is not None and (array.ndim != len(shape) or any(
            s is not None and a != s for a, s in zip(array.shape, shape, strict=True))):
        raise HdbenchError(f"{label}: {name} has shape {array.shape}; expected {expected}")
    if np.iscomplexobj(array):
        raise HdbenchError(f"{label}: {name} is complex; rates, outputs and weights must be real")
    if array.dtype.kind not in "fiub":
        raise HdbenchError(f"{label}: {name} has dtype {array.dtype}; expected real numbers")
    array = array.astype(np.float64, copy=False)
    if not np.all(np.isfinite(array)):
        raise HdbenchError(f"{label}: {name} holds NaN or inf")
    if array.size and float(np.abs(array).max()) > MAX_MAGNITUDE:
        raise HdbenchError(f"{label}: {name} reaches {np.abs(array).max():.3g}; values above "
                           f"{MAX_MAGNITUDE:g} overflow float64 arithmetic, rescale them")
    return array


def parse_model_spec(text: str) -> tuple[str | None, Path, str]:
    """``"[NAME=]path/to/file.py:factory"`` -> (NAME or None, path, factory)."""
    name, sep, rest = str(text).partition("=")
    if not sep or "/" in name or name.endswith(".py"):
        name, rest = None, str(text)
    path, colon, factory = rest.rpartition(":")
    if not colon or not path.endswith(".py") or not _IDENTIFIER.match(factory):
        raise HdbenchError(f"a model file must be given as [NAME=]path/to/file.py:factory; got "
                           f"{text!r}")
    return name, Path(path), factory


def _simulate_kwargs(system) -> set[str] | None:
    """The keywords of ``system.simulate`` among seed/silence (None: it takes ``**kwargs``)."""
    try:
        params = inspect.signature(system.simulate).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params} & {"seed", "silence"}


class UserSystem:
    """A user's system seen through the full system interface, its activity checked.

    ``simulate`` without ``seed=`` or ``silence=`` is called without them (silencing is then
    not computable), a missing ``recurrent_weights()`` makes connectivity not computable, and
    whatever ``simulate`` returns must be an :class:`~hdbench.system.Activity`-like object with
    finite, real ``rates [batch, time, units]`` and ``outputs [batch, time, 2]`` matching the
    inputs (else a one-line :class:`HdbenchError`). Every other attribute is the user's object's
    (``vector_field``, ``state_rates``, ``cell_types``, ...).
    """

    def __init__(self, system, label: str):
        self._system = system
        self._label = label
        self._accepts = _simulate_kwargs(system)

    def __getattr__(self, name):
        if name in ("_system", "_label", "_accepts"):  # not set yet (e.g. while unpickling)
            raise AttributeError(name)
        return getattr(self._system, name)

    @property
    def n_units(self) -> int:
        return int(self._system.n_units)

    def simulate(self, inputs, seed=None, silence=None):
        accepts = {"seed", "silence"} if self._accepts is None else self._accepts
        if silence is not None and "silence" not in accepts:
            raise NotComputableError("the system's simulate() takes no silence=")
        kwargs = {"seed": seed} if "seed" in accepts else {}
        if silence is not None:
            kwargs["silence"] = silence
        array = inputs.inputs if hasattr(inputs, "inputs") else np.asarray(inputs)
        try:
            activity = self._system.simulate(inputs, **kwargs)
        except (HdbenchError, NotComputableError):
            raise
        except Exception as err:
            raise HdbenchError(f"{self._label}: simulate() raised {type(err).__name__}: "
                               f"{str(err).splitlines()[0] if str(err) else ''}") from None
        self._check(activity, array.shape[:2])
        return activity

    def _check(self, activity, batch_time) -> None:
        rates, outputs = getattr(activity, "rates", None), getattr(activity, "outputs", None)
        if rates is None or outputs is None:
            raise HdbenchError(f"{self._label}: simulate() must return an "
                               f"hdbench.system.Activity; got a {type(activity).__name__}")
        b, t = batch_time
        check_array("rates", rates, f"{self._label}: simulate()", (b, t, None),
                    f"[{b}, {t}, units]")
        check_array("outputs", outputs, f"{self._label}: simulate()", (b, t, 2), f"[{b}, {t}, 2]")

    def recurrent_weights(self):
        if not callable(getattr(self._system, "recurrent_weights", None)):
            raise NotComputableError("the system has no recurrent_weights()")
        n = self.n_units
        return check_array("recurrent_weights()", self._system.recurrent_weights(), self._label,
                           (n, n), f"[{n}, {n}]")


def as_user_system(system, label: str):
    """``system`` checked for the system interface; hdbench's own trainable models as they are
    (their vector field is recognised by type)."""
    from hdbench.models import TrainableSystem

    if not callable(getattr(system, "simulate", None)):
        raise HdbenchError(f"{label} returned a {type(system).__name__} without a "
                           "simulate(inputs) method; see hdbench.system.System")
    return system if isinstance(system, TrainableSystem) else UserSystem(system, label)


@contextlib.contextmanager
def _beside(path):
    """``path``'s folder first on ``sys.path`` (a model file may import modules next to it)."""
    folder = str(Path(path).parent)
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        if folder in sys.path:
            sys.path.remove(folder)


def import_file(path, module_name: str):
    """Import the Python file ``path`` as ``module_name`` (kept in ``sys.modules``)."""
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    with _beside(path):
        try:
            spec.loader.exec_module(module)
        except Exception as err:
            raise HdbenchError(f"cannot import model file {path}: {type(err).__name__}: "
                               f"{err}") from None
    sys.modules[module_name] = module
    return module


def load_factory(path, factory: str, module_name: str | None = None):
    """``factory()`` from the Python file ``path``, checked (:func:`as_user_system`)."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise HdbenchError(f"model file {path} not found")
    if path.suffix != ".py":
        raise HdbenchError(f"model file {path} is not a .py file")
    if not _IDENTIFIER.match(factory):
        raise HdbenchError(f"factory name {factory!r} is not a Python identifier")
    if module_name is None:
        module_name = "hdbench_user_" + hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    made = getattr(import_file(path, module_name), factory, None)
    if not callable(made):
        raise HdbenchError(f"model file {path} has no callable {factory!r}")
    with _beside(path):
        try:
            system = made()
        except HdbenchError:
            raise
        except Exception as err:
            raise HdbenchError(f"{path.name}:{factory}() raised {type(err).__name__}: "
                               f"{err}") from None
    return as_user_system(system, f"{path.name}:{factory}()")


def _rounded(array) -> bytes:
    array = np.asarray(array, dtype=np.float64)
    scale = float(np.abs(array).max()) if array.size else 0.0
    if scale == 0.0:
        return array.shape.__repr__().encode()
    exponent = np.floor(np.log10(scale))
    quantum = 10.0 ** (exponent - PROBE_DIGITS)
    return repr(array.shape).encode() + np.round(array / quantum).astype(np.int64).tobytes()


def behaviour_digest(system) -> str:
    """SHA-256 (hex) of what ``system`` does: its rates and outputs on a fixed probe batch
    (:data:`PROBE_TRIALS` trials of the default task, :data:`PROBE_STEPS` steps) and its
    recurrent weights when it has them, rounded to :data:`PROBE_DIGITS` significant digits."""
    from hdbench.task import DEFAULT_PRESET, get_spec, make_trials

    spec = get_spec(DEFAULT_PRESET).replace(n_steps=PROBE_STEPS)
    activity = system.simulate(make_trials(spec, PROBE_TRIALS, PROBE_SEED), seed=0)
    digest = hashlib.sha256()
    digest.update(_rounded(activity.rates))
    digest.update(_rounded(activity.outputs))
    weights = getattr(system, "recurrent_weights", None)
    if callable(weights):
        try:
            digest.update(_rounded(weights()))
        except NotComputableError:
            pass
    return digest.hexdigest()
