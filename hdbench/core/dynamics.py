"""Euler integration of rate dynamics, forward and backward.

Two implementations with identical semantics:

- :func:`integrate` — the fast path: a no-graph forward loop into preallocated buffers and a
  hand-written BPTT (:class:`_RateDynamics`) whose weight gradient is one large GEMM after the
  backward loop. Used by models and references.
- :func:`integrate_autograd` — plain autograd through a per-step loop; the reference the fast
  path is tested against (and the fallback when pre-activations need gradients).
"""

from __future__ import annotations

import torch

from hdbench.errors import HdbenchError

# Each activation: (f, f' as a function of (a, f(a))).
# tanh is evaluated as 2σ(2x) − 1 on the fast path: same function, several times cheaper than
# torch.tanh on CPU (ecosystem.md §3.5), max float32 difference ~2e-7.


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


def _apply_fast(name: str, a: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out = f(a)`` with few, in-place kernels (no autograd)."""
    if name == "retanh":
        torch.clamp_min(a, 0.0, out=out)
        out.mul_(2.0).sigmoid_().mul_(2.0).sub_(1.0)
    elif name == "tanh":
        torch.mul(a, 2.0, out=out)
        out.sigmoid_().mul_(2.0).sub_(1.0)
    elif name == "relu":
        torch.clamp_min(a, 0.0, out=out)
    elif name == "softplus":
        out.copy_(torch.nn.functional.softplus(a))
    else:
        out.copy_(a)
    return out


def _derivative_from_rates(name: str, F: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """f'(a) for a whole trajectory, from the noise-free rates F = f(A) where possible."""
    if name == "retanh":
        D = F * F
        return D.neg_().add_(1.0).mul_(F > 0)
    if name == "tanh":
        D = F * F
        return D.neg_().add_(1.0)
    if name == "relu":
        return (F > 0).to(F.dtype)
    if name == "softplus":
        return torch.sigmoid(A)
    return torch.ones_like(F)


def _keep_mask(silence, n_steps, substeps, n_units, dtype, device):
    """Float [S + 1, N]: 0 where a rate is forced to 0 (row i = internal step i; row 0 = h_0)."""
    if silence is None:
        return None
    silence.check(n_units)
    stop = n_steps if silence.stop is None else min(silence.stop, n_steps)
    keep = torch.ones(n_steps * substeps + 1, n_units, dtype=dtype, device=device)
    if stop <= silence.start:
        return keep
    units = torch.as_tensor(silence.units, dtype=torch.long, device=device)
    # Task step t covers internal steps t*k + 1 ... (t+1)*k; h_0 is silenced when start == 0.
    first = silence.start * substeps + (0 if silence.start == 0 else 1)
    keep[first: stop * substeps + 1, units] = 0.0
    return keep


def _check(drive, W, a0, substeps):
    if drive.dim() != 3:
        raise HdbenchError(f"drive must be [batch, time, units]; got {tuple(drive.shape)}")
    B, T, N = drive.shape
    if W.shape != (N, N):
        raise HdbenchError(f"W must be [{N}, {N}] to match drive; got {tuple(W.shape)}")
    if a0.shape not in ((N,), (B, N)):
        raise HdbenchError(f"a0 must be [{N}] or [{B}, {N}]; got {tuple(a0.shape)}")
    if isinstance(substeps, bool) or not isinstance(substeps, int) or substeps < 1:
        raise HdbenchError(f"substeps must be a positive integer; got {substeps!r}")
    return B, T, N


def _step_size(alpha, substeps, N, drive):
    step = torch.as_tensor(alpha, dtype=drive.dtype, device=drive.device) / substeps
    if step.dim() > 1 or (step.dim() == 1 and step.shape[0] != N):
        raise HdbenchError(f"alpha must be a scalar or a vector of {N} values")
    if not bool(torch.all((step > 0) & (step <= 1))):
        raise HdbenchError("alpha / substeps must lie in (0, 1] for a stable Euler step")
    return step


def _noise(noise_std, generator, S, B, N, drive):
    if not noise_std > 0:
        return None
    return noise_std * torch.randn((S, B, N), generator=generator, dtype=drive.dtype,
                                   device=drive.device)


def integrate_autograd(drive, W, a0, alpha, *, activation="retanh", W_mask=None,
                       noise_std=0.0, generator=None, silence=None, substeps=1,
                       return_preactivations=False):
    """Integrate with plain autograd through a per-step loop (reference implementation).

    Same arguments and results as :func:`integrate`.
    """
    f = activation_fn(activation)
    B, T, N = _check(drive, W, a0, substeps)
    step = _step_size(alpha, substeps, N, drive)
    W_eff = W * W_mask if W_mask is not None else W
    keep = _keep_mask(silence, T, substeps, N, drive.dtype, drive.device)
    noise = _noise(noise_std, generator, T * substeps, B, N, drive)
    a = a0.expand(B, N)
    h = f(a) if keep is None else f(a) * keep[0]
    rates, preacts, i = [], [], 0
    for drive_t in drive.unbind(1):
        for _ in range(substeps):
            i += 1
            a = a + step * (-a + h @ W_eff.T + drive_t)
            h = f(a)
            if noise is not None:
                h = h + noise[i - 1]
            if keep is not None:
                h = h * keep[i]
        rates.append(h)
        preacts.append(a)
    rates = torch.stack(rates, dim=1)
    if return_preactivations:
        return rates, torch.stack(preacts, dim=1)
    return rates


class _RateDynamics(torch.autograd.Function):
    """Forward loop without a graph; BPTT by hand (ecosystem.md §3.5).

    Internal step i = 1..S: ``a_i = (1 − s) a_{i−1} + s (W h_{i−1} + drive)``,
    ``h_i = (f(a_i) + noise_i) · keep_i``. The backward keeps ``P_i = s · dL/da_i`` (the gradient
    with respect to the drive of step i) and forms dL/dW as one GEMM over all steps at the end.
    """

    @staticmethod
    def forward(ctx, drive, W_eff, a0, step, activation, substeps, noise, keep):
        B, T, N = drive.shape
        k, S = substeps, T * substeps
        A = drive.new_empty((S + 1, B, N))  # a_0 ... a_S
        F = drive.new_empty((S + 1, B, N))  # f(a_0) ... f(a_S), noise-free
        H = F if noise is None and keep is None else drive.new_empty((S + 1, B, N))
        A[0].copy_(a0.expand(B, N))
        _apply_fast(activation, A[0], F[0])
        if H is not F:
            torch.mul(F[0], keep[0], out=H[0]) if keep is not None else H[0].copy_(F[0])
        Wt = W_eff.t()
        pre = drive.new_empty((B, N))
        drive_steps = drive.transpose(0, 1)
        weight = float(step) if step.dim() == 0 else step
        for i in range(1, S + 1):
            torch.addmm(drive_steps[(i - 1) // k], H[i - 1], Wt, out=pre)
            torch.lerp(A[i - 1], pre, weight, out=A[i])
            _apply_fast(activation, A[i], F[i])
            if noise is not None:
                torch.add(F[i], noise[i - 1], out=H[i])
                if keep is not None:
                    H[i].mul_(keep[i])
            elif keep is not None:
                torch.mul(F[i], keep[i], out=H[i])
        ctx.save_for_backward(W_eff, H, F, A if activation == "softplus" else None, step, keep)
        ctx.activation, ctx.substeps = activation, substeps
        rates = H[k::k].transpose(0, 1).contiguous()
        preacts = A[k::k].transpose(0, 1).contiguous()
        ctx.mark_non_differentiable(preacts)
        return rates, preacts

    @staticmethod
    def backward(ctx, grad_rates, _grad_preacts):
        W_eff, H, F, A, step, keep = ctx.saved_tensors
        k = ctx.substeps
        S1, B, N = H.shape
        S = S1 - 1
        sD = _derivative_from_rates(ctx.activation, F, A)  # becomes s · f'(a) · keep
        if keep is not None:
            sD.mul_(keep.unsqueeze(1))
        D0 = sD[0].clone()
        sD.mul_(step)
        scalar = step.dim() == 0
        one_minus = 1.0 - (float(step) if scalar else step)
        grad_ext = grad_rates.transpose(0, 1) if grad_rates is not None else None
        P = H.new_empty((S1, B, N))  # P[i] = s · dL/da_i for i >= 1; P[0] unused
        gh = H.new_empty((B, N))
        for i in range(S, 0, -1):
            sample = grad_ext is not None and i % k == 0
            if i == S:
                if sample:
                    gh.copy_(grad_ext[i // k - 1])
                else:
                    gh.zero_()
                torch.mul(sD[i], gh, out=P[i])
                continue
            if sample:
                torch.addmm(grad_ext[i // k - 1], P[i + 1], W_eff, out=gh)
            else:
                torch.mm(P[i + 1], W_eff, out=gh)
            torch.mul(sD[i], gh, out=P[i])
            if scalar:
                P[i].add_(P[i + 1], alpha=one_minus)
            else:
                P[i].addcmul_(P[i + 1], one_minus)
        # h_0 = f(a_0) reaches a_1 through W; a_0 reaches a_1 directly with weight (1 − s).
        grad_a0 = D0 * torch.mm(P[1], W_eff) + one_minus * P[1] / step
        Pm = P[1:]
        grad_W = Pm.reshape(-1, N).t() @ H[:S].reshape(-1, N)
        grad_drive = Pm.reshape(-1, k, B, N).sum(1).transpose(0, 1) if k > 1 \
            else Pm.transpose(0, 1)
        return grad_drive, grad_W, grad_a0, None, None, None, None, None


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
        Source of the noise (drawn as one ``[steps, batch, units]`` block); pass one for
        reproducible noise.
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
        Differentiable with respect to ``drive``, ``W`` and ``a0``.
    preactivations : Tensor [batch, time, units], only if requested
    """
    if activation not in ACTIVATIONS:
        activation_fn(activation)
    B, T, N = _check(drive, W, a0, substeps)
    needs_grad = torch.is_grad_enabled() and any(
        t.requires_grad for t in (drive, W, a0))
    if return_preactivations and needs_grad:
        return integrate_autograd(drive, W, a0, alpha, activation=activation, W_mask=W_mask,
                                  noise_std=noise_std, generator=generator, silence=silence,
                                  substeps=substeps, return_preactivations=True)
    step = _step_size(alpha, substeps, N, drive)
    W_eff = W * W_mask if W_mask is not None else W
    keep = _keep_mask(silence, T, substeps, N, drive.dtype, drive.device)
    noise = _noise(noise_std, generator, T * substeps, B, N, drive)
    rates, preacts = _RateDynamics.apply(drive.contiguous(), W_eff, a0, step, activation,
                                         substeps, noise, keep)
    return (rates, preacts) if return_preactivations else rates
