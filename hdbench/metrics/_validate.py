"""Input checks shared by the metric modules: float64, finite, the expected shape."""

from __future__ import annotations

import numpy as np

from hdbench.errors import HdbenchError
from hdbench.system import MAX_MAGNITUDE


def as_array(data, name: str, ndim: int | tuple[int, ...]) -> np.ndarray:
    """``data`` as a finite float64 array with ``ndim`` dimensions, or an :class:`HdbenchError`."""
    if np.iscomplexobj(data):
        raise HdbenchError(f"{name} is complex; representations must be real")
    try:
        arr = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise HdbenchError(f"{name} must be a numeric array; got {type(data).__name__}") from exc
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in allowed:
        shapes = " or ".join(f"{d}-D" for d in allowed)
        raise HdbenchError(f"{name} must be {shapes}; got shape {arr.shape}")
    if arr.size == 0:
        raise HdbenchError(f"{name} is empty (shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        raise HdbenchError(f"{name} contains NaN or inf")
    if float(np.abs(arr).max()) > MAX_MAGNITUDE:
        raise HdbenchError(f"{name} reaches {float(np.abs(arr).max()):.3g}; values above "
                           f"{MAX_MAGNITUDE:g} overflow float64 arithmetic, rescale them")
    return arr


def as_matrix(data, name: str, min_rows: int = 1) -> np.ndarray:
    """A finite float64 ``[conditions, units]`` matrix with at least ``min_rows`` rows."""
    arr = as_array(data, name, 2)
    if arr.shape[0] < min_rows:
        raise HdbenchError(
            f"{name} needs at least {min_rows} conditions (rows); got {arr.shape[0]}"
        )
    return arr


def same_rows(X: np.ndarray, Y: np.ndarray, xname: str = "X", yname: str = "Y") -> None:
    """Both matrices must describe the same conditions (rows)."""
    if X.shape[0] != Y.shape[0]:
        raise HdbenchError(
            f"{xname} and {yname} must have the same number of conditions (rows); "
            f"got {X.shape[0]} and {Y.shape[0]}"
        )


def check_choice(value, name: str, choices) -> str:
    """``value`` if it is one of ``choices``; otherwise an error that lists them."""
    if value not in choices:
        raise HdbenchError(f"unknown {name} {value!r}; expected one of {', '.join(choices)}")
    return value


def is_constant(centred: np.ndarray, raw: np.ndarray) -> bool:
    """True when centring ``raw`` left nothing but rounding error (all-zero or constant data)."""
    scale = float(np.max(np.abs(raw)))
    return scale == 0.0 or float(np.max(np.abs(centred))) <= 64 * np.finfo(float).eps * scale


def angle(cosine: float) -> float:
    """arccos of a cosine, clipped to [-1, 1] against rounding."""
    return float(np.arccos(np.clip(cosine, -1.0, 1.0)))


def check_bool(value, name: str) -> bool:
    """``value`` if it is a bool (numpy's included); otherwise an error naming it."""
    if not isinstance(value, (bool, np.bool_)):
        raise HdbenchError(f"{name} must be True or False; got {value!r}")
    return bool(value)
