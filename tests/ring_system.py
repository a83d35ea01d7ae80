"""A small hand-built ring attractor with known cell types, offsets and silencing signature.

Cueva-style: a compass ring holds the bump with its own recurrent excitation; CW and CCW shifter
rings copy the compass bump, are driven up or down by AV and project back onto the compass
ring with offsets of −30° (CW) and +30° (CCW). Built as a :class:`~hdbench.models.CTRNN`
(ReLU-tanh rates, α = 0.2) so that every analysis sees an ordinary trained-model object.
"""

from __future__ import annotations

import numpy as np
import torch

from hdbench.models import build
from hdbench.task import TaskSpec

OFFSET = np.radians(30.0)
#: Slow AV statistics inside the ring's linear range (stationary SD ≈ 0.0033 rad/step).
SPEC = TaskSpec(name="ring-test", sigma=0.002, n_steps=300)


def ring_ctrnn(n: int = 32, *, offset: float = OFFSET, k: float = 0.09):
    """The ring network: units 0..n-1 compass, n..2n-1 CW shifters, 2n..3n-1 CCW shifters.

    ``k`` (rad/step per unit of input) sets the integration gain (≈ 1 for slow turns).
    """
    N = 3 * n
    theta = 2 * np.pi * np.arange(n) / n
    d = theta[:, None] - theta[None, :]  # PD_target − PD_source
    C, CW, CCW = slice(0, n), slice(n, 2 * n), slice(2 * n, 3 * n)
    W, U, b, V = np.zeros((N, N)), np.zeros((N, 3)), np.zeros(N), np.zeros((2, N))
    W[C, C] = (-8.0 + 8.0 * np.cos(d)) / n
    W[CW, C] = W[CCW, C] = np.eye(n)
    W[C, CW] = (-2.0 + 4.0 * np.cos(d + offset)) / n  # excites targets at Δ = −offset
    W[C, CCW] = (-2.0 + 4.0 * np.cos(d - offset)) / n  # excites targets at Δ = +offset
    U[CW, 0], U[CCW, 0] = -1.0 / k, 1.0 / k
    U[C, 1], U[C, 2] = np.sin(theta), np.cos(theta)
    b[C], b[CW], b[CCW] = 1.0, -0.5, -0.5
    V[0, C], V[1, C] = np.sin(theta) / n, np.cos(theta) / n
    net = build("ctrnn", n_units=N, activation="retanh", alpha=0.2)
    with torch.no_grad():
        for name, value in (("W", W), ("U", U), ("b", b), ("V", V)):
            getattr(net, name).copy_(torch.as_tensor(value, dtype=torch.float32))
        net.a0.zero_()
    net.cell_types = ("compass",) * n + ("shifter_cw",) * n + ("shifter_ccw",) * n
    return net.eval()
