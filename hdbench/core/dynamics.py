"""Euler integration of rate dynamics, forward and backward."""

from __future__ import annotations

import torch

from hdbench.errors import HdbenchError


def _retanh(a: torch.Tensor) -> torch.Tensor:
    return torch.tanh(a).clamp_min(0.0)


ACTIVATIONS = {
    "retanh": _retanh,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "softplus": torch.nn.functional.softplus,
    "linear": lambda a: a,
}


def activation_fn(name: str):
    """The rate function f for a name in :data:`ACTIVATIONS`."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise HdbenchError(
            f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}"
        ) from None


def _silence_mask(silence, n_steps, n_units, device):
    """Bool [T + 1, N]: True where a rate is forced to 0 (row 0 is the initial rate)."""
    if silence is None:
        return None
    silence.check(n_units)
    mask = torch.zeros(n_steps + 1, n_units, dtype=torch.bool, device=device)
    stop = n_steps if silence.stop is None else min(silence.stop, n_steps)
    # Task step t produces rate row t + 1; row 0 (initial rate) is silenced when start == 0.
    rows = slice(silence.start + 1, stop + 1)
    units = torch.as_tensor(silence.units, dtype=torch.long, device=device)
    mask[rows, units] = True
    if silence.start == 0 and stop > 0:
        mask[0, units] = True
    return mask


def integrate_autograd(drive, W, a0, alpha, *, activation="retanh", W_mask=None,
                       noise_std=0.0, generator=None, silence=None, substeps=1,
                       return_preactivations=False):
    """Integrate with plain autograd through a per-step loop (reference implementation).

    Same arguments and results as :func:`integrate`.
    """
    f = activation_fn(activation)
    if drive.dim() != 3:
        raise HdbenchError(f"drive must be [batch, time, units]; got {tuple(drive.shape)}")
    B, T, N = drive.shape
    if W.shape != (N, N):
        raise HdbenchError(f"W must be [{N}, {N}] to match drive; got {tuple(W.shape)}")
    if substeps < 1:
        raise HdbenchError(f"substeps must be >= 1; got {substeps}")
    W_eff = W * W_mask if W_mask is not None else W
    step = torch.as_tensor(alpha, dtype=drive.dtype, device=drive.device) / substeps
    a = a0.expand(B, N) if a0.dim() == 1 else a0
    quiet = _silence_mask(silence, T, N, drive.device)
    h = f(a)
    if quiet is not None:
        h = h.masked_fill(quiet[0], 0.0)
    rates, preacts = [], []
    for t, drive_t in enumerate(drive.unbind(1)):
        for _ in range(substeps):
            a = a + step * (-a + h @ W_eff.T + drive_t)
            h = f(a)
            if noise_std > 0:
                h = h + noise_std * torch.randn(h.shape, generator=generator,
                                                dtype=h.dtype, device=h.device)
            if quiet is not None:
                h = h.masked_fill(quiet[t + 1], 0.0)
        rates.append(h)
        preacts.append(a)
    rates = torch.stack(rates, dim=1)
    if return_preactivations:
        return rates, torch.stack(preacts, dim=1)
    return rates


def integrate(drive, W, a0, alpha, *, activation="retanh", W_mask=None, noise_std=0.0,
              generator=None, silence=None, substeps=1, return_preactivations=False):
    """Integrate ``a ← a + (α/substeps)(−a + W_eff f(a) + drive_t)`` over all task steps.

    Parameters
    ----------
    drive : Tensor [batch, time, units]
        External drive per task step (``U x_t + b``, computed by the caller in one GEMM).
    W : Tensor [units, units]
        Recurrent weights ``W[target, source]``.
    a0 : Tensor [units] or [batch, units]
        Initial pre-activation state.
    alpha : float or Tensor [units]
        ``dt / τ`` per task step; a vector gives per-unit time constants.
    activation : str
        Rate function f, one of :data:`ACTIVATIONS`.
    W_mask : Tensor [units, units], optional
        Fixed multiplicative mask on W (e.g. zero diagonal), applied on every call.
    noise_std : float
        SD of Gaussian noise added to the rates after f at every sub-step.
    generator : torch.Generator, optional
        Source of the noise; pass one for reproducible noise.
    silence : hdbench.system.Silence, optional
        Units whose rates are forced to 0 over a window of task steps.
    substeps : int
        Internal Euler sub-steps per task step (references integrate finer than the task).
    return_preactivations : bool
        Also return the pre-activations ``a`` at the end of each task step.

    Returns
    -------
    rates : Tensor [batch, time, units]
        ``h`` at the end of each task step (``rates[:, t]`` has seen ``drive[:, t]``).
    preactivations : Tensor [batch, time, units], only if requested
    """
    return integrate_autograd(drive, W, a0, alpha, activation=activation, W_mask=W_mask,
                              noise_std=noise_std, generator=generator, silence=silence,
                              substeps=substeps, return_preactivations=return_preactivations)
