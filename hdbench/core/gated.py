"""Compiled loops of the discrete-time baselines: tanh RNN, GRU and LSTM (``_gated.cpp``).

The same equations, gate order and parameters as ``torch.nn.RNN`` / ``GRU`` / ``LSTM`` (one
layer, batch first), with a forward of two small products and one fused gate pass per step and
a hand-written BPTT (gradients checked against ``torch.nn``'s in the tests). At the Cueva shape
``torch.nn``'s CPU backward runs autograd through ~10 small kernels per step and gate; here a
step is one pass and three products. :func:`gated_readout` folds the readout and the rate
penalty into the backward as :func:`hdbench.core.integrate_readout` does.

Only the compiled path lives here: callers check :func:`available` and otherwise run
``torch.nn`` (no compiler, CUDA, gradients for the inputs, silencing with gradients).
"""

from __future__ import annotations

import torch

from hdbench.core import _native
from hdbench.errors import HdbenchError

KINDS = {"vanilla": 0, "gru": 1, "lstm": 2}
GATES = {"vanilla": 1, "gru": 3, "lstm": 4}


def available(inputs: torch.Tensor) -> bool:
    """Whether the compiled loops can run on ``inputs`` (CPU, float32/64, extension built)."""
    return _native.for_call("tanh", inputs) is not None


def silence_window(silence, n_steps: int, n_units: int, like: torch.Tensor):
    """``(keep [N], first, last)``: rates of steps first..last (1-based; h_0 never) forced to 0
    for units with keep 0, as ``torch.nn`` stepped through the window and masked would give."""
    keep = torch.ones(n_units, dtype=like.dtype)
    if silence is None:
        return keep, 1, 0
    silence.check(n_units)
    stop = n_steps if silence.stop is None else min(silence.stop, n_steps)
    if stop <= silence.start or not silence.units:
        return keep, 1, 0
    keep[list(silence.units)] = 0.0
    return keep, silence.start + 1, stop


def _check(kind, inputs, W_ih, W_hh, b_ih, b_hh, h0, c0):
    if kind not in KINDS:
        raise HdbenchError(f"unknown gated kind {kind!r}; known: {', '.join(KINDS)}")
    if inputs.dim() != 3:
        raise HdbenchError(f"inputs must be [batch, time, features]; got {tuple(inputs.shape)}")
    B, T, D = inputs.shape
    N = W_hh.shape[1]
    GN = GATES[kind] * N
    if W_hh.shape != (GN, N) or W_ih.shape != (GN, D) or b_ih.shape != (GN,) \
            or b_hh.shape != (GN,):
        raise HdbenchError(f"{kind} weights must be W_ih [{GN}, {D}], W_hh [{GN}, {N}] and "
                           f"biases [{GN}]")
    for name, state in (("h0", h0), ("c0", c0)):
        if state is not None and state.shape not in ((N,), (B, N)):
            raise HdbenchError(f"{name} must be [{N}] or [{B}, {N}]; got {tuple(state.shape)}")
    for name, t in (("W_ih", W_ih), ("W_hh", W_hh), ("b_ih", b_ih), ("b_hh", b_hh), ("h0", h0),
                    ("c0", c0)):
        if t is not None and (t.dtype != inputs.dtype or t.device != inputs.device):
            raise HdbenchError(f"{name} must have the inputs' dtype and device ({inputs.dtype} "
                               f"on {inputs.device}); got {t.dtype} on {t.device}")
    if (kind == "lstm") != (c0 is not None):
        raise HdbenchError("c0 is given with (and only with) the LSTM")
    return B, T, D, N


def _forward(ext, kind, X, Wh, Wi, h0, c0, keep, first, last, for_backward):
    T, B, _ = X.shape
    N = Wh.shape[0] - 1
    rows = T + 1 if for_backward else 2
    Hx = X.new_empty((rows, B, N + 1))
    Hx[0, :, :N] = h0
    Hx[0, :, N] = 1.0
    C = None
    if kind == "lstm":
        C = X.new_empty((rows, B, N))
        C[0] = c0
    cache = X.new_empty((T, B, 4 * N)) if for_backward and kind != "vanilla" else None
    rates = X.new_empty((B, T, N))
    ext.gated_forward(KINDS[kind], X, Wh, Wi, Hx, C, cache, rates, keep, first, last)
    return rates, Hx, C, cache


class _Gated(torch.autograd.Function):
    """Forward without a graph, BPTT by hand (see ``_gated.cpp``)."""

    @staticmethod
    def forward(ctx, X, W_ih, W_hh, b_ih, b_hh, h0, c0, V, kind, ext):
        Wh = torch.cat([W_hh.t(), b_hh[None]]).contiguous()
        Wi = torch.cat([W_ih.t(), b_ih[None]]).contiguous()
        N = W_hh.shape[1]
        keep = torch.ones(N, dtype=X.dtype)
        rates, Hx, C, cache = _forward(ext, kind, X, Wh, Wi, h0, c0, keep, 1, 0, True)
        ctx.kind, ctx.ext = kind, ext
        ctx.h0_shared, ctx.c0_shared = h0.dim() == 1, c0 is not None and c0.dim() == 1
        ctx.save_for_backward(X, W_hh, Hx, C, cache, V)
        if V is None:
            return rates
        flat = rates.view(-1, N)
        outputs = (flat @ V.t()).view(*rates.shape[:-1], V.shape[0])
        mean_square = torch.dot(flat.view(-1), flat.view(-1)) / flat.numel()
        ctx.set_materialize_grads(False)
        return rates, outputs, mean_square

    @staticmethod
    def backward(ctx, grad_rates, grad_outputs=None, grad_mean_square=None):
        X, W_hh, Hx, C, cache, V = ctx.saved_tensors
        T, B, D1 = X.shape
        N = W_hh.shape[1]
        GN = W_hh.shape[0]
        c_h = 0.0 if grad_mean_square is None else 2.0 * float(grad_mean_square) / (B * T * N)
        if grad_rates is None and grad_outputs is None and c_h == 0.0:
            return (None,) * 10
        dWh, dWi = X.new_empty((GN, N + 1)), X.new_empty((D1, GN))
        dh0 = X.new_empty((B, N))
        dc0 = X.new_empty((B, N)) if ctx.kind == "lstm" else None
        dV = V.new_empty(V.shape) if V is not None and grad_outputs is not None else None
        rows = None if grad_rates is None else _unit_stride(grad_rates).transpose(0, 1)
        gout = None if grad_outputs is None else _unit_stride(grad_outputs).transpose(0, 1)
        ctx.ext.gated_backward(KINDS[ctx.kind], X, W_hh.contiguous(), Hx, C, cache, rows, gout, V,
                               c_h, dV, dWh, dWi, dh0, dc0)
        grads = [None] * 10
        grads[1] = dWi[:-1].t()
        grads[2] = dWh[:, :N]
        grads[3] = dWi[-1]
        grads[4] = dWh[:, N]
        grads[5] = dh0.sum(0) if ctx.h0_shared else dh0
        if dc0 is not None:
            grads[6] = dc0.sum(0) if ctx.c0_shared else dc0
        grads[7] = dV
        return tuple(grads)


def _unit_stride(x):
    return x if x.stride(-1) == 1 else x.contiguous()


def _rows(inputs):
    """``[x_t, 1]`` time-major: ``[T, B, D + 1]``."""
    B, T, _ = inputs.shape
    return torch.cat([inputs, inputs.new_ones(B, T, 1)], dim=2).transpose(0, 1).contiguous()


def gated(kind, inputs, W_ih, W_hh, b_ih, b_hh, h0, c0=None, silence=None):
    """Rates ``[batch, time, units]`` of a ``torch.nn`` RNN / GRU / LSTM with these parameters.

    ``h0``, ``c0``: initial states ``[units]`` (shared) or ``[batch, units]``. Differentiable
    with respect to the weights and initial states (not the inputs); ``silence`` forces rates
    and hidden state (not the LSTM's cell) of some units to 0 over a window, without gradients.
    Needs :func:`available`.
    """
    B, T, D, N = _check(kind, inputs, W_ih, W_hh, b_ih, b_hh, h0, c0)
    ext = _native.for_call("tanh", inputs)
    if ext is None:
        raise HdbenchError("the compiled gated loops are unavailable; use torch.nn")
    weights = (W_ih, W_hh, b_ih, b_hh, h0, c0)
    needs_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in weights)
    if inputs.requires_grad and torch.is_grad_enabled():
        raise HdbenchError("the compiled gated loops give no gradient for the inputs")
    X = _rows(inputs)
    if needs_grad:
        if silence is not None:
            raise HdbenchError("the compiled gated loops silence units only without gradients")
        return _Gated.apply(X, W_ih, W_hh, b_ih, b_hh, h0, c0, None, kind, ext)
    with torch.no_grad():
        Wh = torch.cat([W_hh.t(), b_hh[None]]).contiguous()
        Wi = torch.cat([W_ih.t(), b_ih[None]]).contiguous()
        keep, first, last = silence_window(silence, T, N, inputs)
        return _forward(ext, kind, X, Wh, Wi, h0, c0, keep, first, last, False)[0]


def gated_readout(kind, inputs, W_ih, W_hh, b_ih, b_hh, h0, c0, V):
    """``(rates, outputs = rates Vᵀ, mean(rates²))`` of :func:`gated`, with the readout and the
    penalty folded into the backward (cf. :func:`hdbench.core.integrate_readout`)."""
    _check(kind, inputs, W_ih, W_hh, b_ih, b_hh, h0, c0)
    ext = _native.for_call("tanh", inputs)
    if ext is None:
        raise HdbenchError("the compiled gated loops are unavailable; use torch.nn")
    if V.dim() != 2 or V.shape[1] != W_hh.shape[1]:
        raise HdbenchError(f"V must be [outputs, {W_hh.shape[1]}]; got {tuple(V.shape)}")
    if inputs.requires_grad and torch.is_grad_enabled():
        raise HdbenchError("the compiled gated loops give no gradient for the inputs")
    return _Gated.apply(_rows(inputs), W_ih, W_hh, b_ih, b_hh, h0, c0, V, kind, ext)
