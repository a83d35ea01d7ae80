"""Output loss, rate penalty and the normalized error (NE) of Cueva et al."""

from __future__ import annotations

import numpy as np
import torch

from hdbench.core.readout import mean_square


def masked_mse(outputs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the masked (post-cue) entries, all output channels."""
    m = mask.unsqueeze(-1).to(outputs.dtype)
    return ((outputs - targets) ** 2 * m).sum() / (m.sum() * outputs.shape[-1])


def rate_penalty(rates: torch.Tensor) -> torch.Tensor:
    """mean(h²) over trials, steps and units (the metabolic cost, before λ_r)."""
    return mean_square(rates)


def normalized_error(outputs, targets, mask) -> float:
    """Mean over output channels of SSE / SST on masked entries (papers.md §1.4).

    NE = 1 for a constant predictor at the target mean, 0 for a perfect one. A channel whose
    target is constant contributes its raw SSE. Computed in float64.
    """
    outputs, targets, mask = (np.asarray(a, dtype=np.float64) if not torch.is_tensor(a)
                              else a.detach().double().cpu().numpy()
                              for a in (outputs, targets, mask))
    channels = outputs.shape[-1]
    # weighted sums over the flattened entries (BLAS products) instead of boolean indexing,
    # which copies the selected rows: 5x faster on a training batch
    w = mask.reshape(-1)
    y, t = outputs.reshape(-1, channels), targets.reshape(-1, channels)
    if not (np.isfinite(y).all() and np.isfinite(t).all()):  # 0 · inf would leak from w = 0
        keep = w.astype(bool)
        y, t, w = y[keep], t[keep], w[keep]
    n = w.sum()
    sse = w @ np.square(y - t)
    sst = w @ np.square(t - (w @ t) / max(n, 1.0))
    per_channel = np.where(sst > 0, sse / np.where(sst > 0, sst, 1.0), sse)
    return float(per_channel.mean())
