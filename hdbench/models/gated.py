"""Discrete-time baselines with ``torch.nn``'s recurrent modules: GRU, LSTM, vanilla RNN.

They share the CTRNN's interface (learned initial state, linear readout without bias, rates =
hidden state) so that they can sit on the same leaderboard. The ``torch.nn`` module holds the
parameters (its initialisation and state-dict names); on the CPU the compiled loops of
:mod:`hdbench.core.gated` run it with the same equations, elsewhere ``torch.nn`` does.
``recurrent_weights`` returns the block of ``weight_hh`` that drives the new hidden content: the
candidate (n) block for the GRU, the cell-input (g) block for the LSTM, the whole matrix for the
vanilla RNN.
"""

from __future__ import annotations

import numpy as np
import torch

from hdbench.core import gated, readout
from hdbench.errors import HdbenchError
from hdbench.models.base import TrainableSystem

_MODULES = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM, "vanilla": torch.nn.RNN}
# Row block of weight_hh used as "the" recurrent weight matrix (gate order as in torch.nn).
_BLOCK = {"gru": 2, "lstm": 2, "vanilla": 0}


class GatedRNN(TrainableSystem):
    """A ``torch.nn`` GRU / LSTM / tanh RNN with a linear readout.

    Parameters
    ----------
    kind : {"gru", "lstm", "vanilla"}
    n_units : int
    init_seed : int
    """

    def __init__(self, kind: str = "gru", n_units: int = 100, n_inputs: int = 3,
                 n_outputs: int = 2, init_seed: int = 0):
        super().__init__()
        if kind not in _MODULES:
            raise HdbenchError(f"unknown gated kind {kind!r}; known: {', '.join(_MODULES)}")
        self.config = dict(kind=kind, n_units=n_units, n_inputs=n_inputs, n_outputs=n_outputs,
                           init_seed=init_seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(init_seed))
            self.rnn = _MODULES[kind](n_inputs, n_units, batch_first=True)
        self.V = torch.nn.Parameter(torch.zeros(n_outputs, n_units))
        self.h0 = torch.nn.Parameter(torch.zeros(n_units))
        if kind == "lstm":
            self.c0 = torch.nn.Parameter(torch.zeros(n_units))

    def _state_parameters(self):
        rnn = self.rnn
        c0 = self.c0 if self.config["kind"] == "lstm" else None
        return (rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0, self.h0, c0)

    def _compiled(self, inputs: torch.Tensor, silence) -> bool:
        """Whether the compiled loop (``hdbench.core.gated``) runs this call."""
        if not gated.available(inputs) or (inputs.requires_grad and torch.is_grad_enabled()):
            return False
        return silence is None or not (torch.is_grad_enabled() and any(
            p.requires_grad for p in self.parameters()))

    def forward(self, inputs: torch.Tensor, noise_std: float = 0.0, generator=None,
                silence=None):
        """Return ``(outputs, rates)``. Rate noise is not used by the gated baselines.

        Runs the compiled loop where it can (CPU; see :meth:`_compiled`), else ``torch.nn``.
        """
        if self._compiled(inputs, silence):
            rates = gated.gated(self.config["kind"], inputs, *self._state_parameters(),
                                silence=silence)
            return readout(rates, self.V), rates
        B = inputs.shape[0]
        h0 = self.h0.expand(1, B, -1).contiguous()
        state = (h0, self.c0.expand(1, B, -1).contiguous()) if self.config["kind"] == "lstm" \
            else h0
        if silence is None:
            rates, _ = self.rnn(inputs, state)
        else:
            rates = self._silenced(inputs, state, silence)
        return readout(rates, self.V), rates

    def training_forward(self, inputs: torch.Tensor, noise_std: float = 0.0, generator=None):
        """``(outputs, rates, mean(rates²))``, with the readout and the penalty folded into the
        compiled backward where it runs."""
        if not self._compiled(inputs, None):
            return super().training_forward(inputs, noise_std, generator)
        rates, outputs, penalty = gated.gated_readout(self.config["kind"], inputs,
                                                      *self._state_parameters(), self.V)
        return outputs, rates, penalty

    def _silenced(self, inputs, state, silence):
        """Step through the window so that silenced units are zero in the recurrent state too;
        before and after it the library's own loop runs."""
        silence.check(self.n_units)
        T = inputs.shape[1]
        stop = T if silence.stop is None else min(silence.stop, T)
        start = min(silence.start, stop)
        keep = torch.ones(self.n_units, dtype=inputs.dtype)
        keep[list(silence.units)] = 0.0
        pieces = []
        if start > 0:
            h, state = self.rnn(inputs[:, :start], state)
            pieces.append(h)
        for x_t in inputs[:, start:stop].unbind(1):
            h, state = self.rnn(x_t[:, None], state)
            pieces.append(h * keep)
            state = (state[0] * keep, state[1]) if isinstance(state, tuple) else state * keep
        if stop < T:
            pieces.append(self.rnn(inputs[:, stop:], state)[0])
        return torch.cat(pieces, dim=1)

    def recurrent_weights(self) -> np.ndarray:
        N, block = self.n_units, _BLOCK[self.config["kind"]]
        W = self.rnn.weight_hh_l0[block * N:(block + 1) * N]
        return W.detach().cpu().numpy().astype(np.float64)
