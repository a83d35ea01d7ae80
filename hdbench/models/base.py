"""What every trainable system shares: the simulate() of the system interface."""

from __future__ import annotations

import numpy as np
import torch

from hdbench.core import mean_square
from hdbench.system import Activity, Silence, split_inputs


class TrainableSystem(torch.nn.Module):
    """A ``torch.nn.Module`` with the system interface.

    Subclasses implement ``forward(inputs, noise_std=0.0, generator=None, silence=None)``
    returning ``(outputs, rates)`` as tensors, and :meth:`recurrent_weights`; the trainer calls
    :meth:`training_forward`.
    """

    cell_types = None  # trained models have no ground-truth labels

    @property
    def n_units(self) -> int:
        return self.config["n_units"]

    def recurrent_weights(self) -> np.ndarray:
        raise NotImplementedError

    def training_forward(self, inputs: torch.Tensor, noise_std: float = 0.0, generator=None):
        """``(outputs, rates, mean(rates²))`` for a training step; subclasses may fuse the
        penalty into their backward."""
        outputs, rates = self(inputs, noise_std=noise_std, generator=generator)
        return outputs, rates, mean_square(rates)

    @torch.no_grad()
    def simulate(self, inputs, seed: int | None = None, silence: Silence | None = None,
                 noise_std: float = 0.0) -> Activity:
        """Run noise-free (or with ``noise_std`` rate noise drawn from ``seed``) on a batch.

        ``inputs`` is a :class:`~hdbench.task.Trials` (then heading and AV are kept) or an
        array ``[batch, time, 3]``.
        """
        array, heading, av = split_inputs(inputs)
        generator = None
        if noise_std > 0:
            generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
        x = torch.as_tensor(array, dtype=torch.float32)
        outputs, rates = self(x, noise_std=noise_std, generator=generator, silence=silence)
        return Activity(rates=rates.numpy(), outputs=outputs.numpy(), inputs=array,
                        heading=heading, av=av, cell_types=None)
