"""Output loss, rate penalty and the normalized error (NE) of Cueva et al."""

from __future__ import annotations

import numpy as np
import torch


def masked_mse(outputs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the masked (post-cue) entries, all output channels."""
    m = mask.unsqueeze(-1).to(outputs.dtype)
    return ((outputs - targets) ** 2 * m).sum() / (m.sum() * outputs.shape[-1])


def rate_penalty(rates: torch.Tensor) -> torch.Tensor:
    """mean(h²) over trials, steps and units (the metabolic cost, before λ_r)."""
    # ‖h‖² / n: half the passes over the rates (forward and backward) of (h ** 2).mean()
    return torch.linalg.vector_norm(rates).square() / rates.numel()


def normalized_error(outputs, targets, mask) -> float:
    """Mean over output channels of SSE / SST on masked entries (papers.md §1.4).

    NE = 1 for a constant predictor at the target mean, 0 for a perfect one. A channel whose
    target is constant contributes its raw SSE.
    """
    outputs, targets, mask = (np.asarray(a, dtype=np.float64) if not torch.is_tensor(a)
                              else a.detach().double().cpu().numpy()
                              for a in (outputs, targets, mask))
    keep = mask.astype(bool)
    y, t = outputs[keep], targets[keep]  # [entries, channels]
    sse = ((y - t) ** 2).sum(axis=0)
    sst = ((t - t.mean(axis=0)) ** 2).sum(axis=0)
    per_channel = np.where(sst > 0, sse / np.where(sst > 0, sst, 1.0), sse)
    return float(per_channel.mean())
