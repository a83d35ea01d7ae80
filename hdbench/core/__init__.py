"""The integration core: batched rate dynamics shared by trained models and reference circuits.

    a ← a + α (−a + W f(a) + drive_t),    rates h = f(a) (+ noise), silenced units forced to 0

See :func:`integrate`.
"""

from hdbench.core.dynamics import (
    ACTIVATIONS,
    activation_fn,
    integrate,
    integrate_autograd,
    integrate_readout,
)
from hdbench.core.readout import mean_square, readout

__all__ = ["ACTIVATIONS", "activation_fn", "integrate", "integrate_autograd", "integrate_readout",
           "mean_square", "readout"]
