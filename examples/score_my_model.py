"""Score your own PyTorch model with hdbench and rank it against the published leaderboard.

Run from the repository root::

    python examples/score_my_model.py            # quick protocol, against results/quick/
    python examples/score_my_model.py --full     # the published protocol, results/ (slower)

The model is written here from scratch, as a user would: a GRU that reads angular velocity and
the initial heading cue and outputs (sin, cos) of its heading estimate. hdbench only needs a
``simulate`` method returning an :class:`hdbench.system.Activity`, plus optionally
``recurrent_weights()`` (for the connectivity benchmarks).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import hdbench
from hdbench.system import Activity, split_inputs
from hdbench.task import make_trials

ROOT = Path(__file__).resolve().parent.parent


class MyGRU(torch.nn.Module):
    """A GRU with a linear readout of (sin, cos) heading."""

    def __init__(self, n_units: int = 64, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.gru = torch.nn.GRU(3, n_units, batch_first=True)
        self.readout = torch.nn.Linear(n_units, 2)
        self.n_units = n_units

    def forward(self, x):
        rates, _ = self.gru(x)
        return self.readout(rates), rates

    @torch.no_grad()
    def simulate(self, inputs, seed=None):
        """The hdbench system interface: rates and outputs on a batch of task inputs."""
        x, heading, av = split_inputs(inputs)
        outputs, rates = self(torch.as_tensor(x, dtype=torch.float32))
        return Activity(rates=rates.numpy(), outputs=outputs.numpy(), inputs=x,
                        heading=heading, av=av)

    def recurrent_weights(self):
        """The candidate-state block of the hidden-to-hidden weights, W[target, source]."""
        n = self.n_units
        return self.gru.weight_hh_l0[2 * n:].detach().numpy().astype(np.float64)


def train(model: MyGRU, updates: int = 150, seed: int = 0) -> MyGRU:
    """A short training on the Cueva task (enough to leave the untrained floor)."""
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for update in range(updates):
        trials = make_trials("cueva-1x", 32, seed=[seed, update])
        outputs, _ = model(torch.as_tensor(trials.inputs))
        mask = torch.as_tensor(trials.mask)
        loss = ((outputs - torch.as_tensor(trials.targets)) ** 2)[mask].mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


def main(quick: bool = True, references=None, benchmarks=None, store=None, updates: int = 150):
    """Train, score and rank; returns (scores, ranking)."""
    torch.set_num_threads(1)
    model = train(MyGRU(), updates=updates)
    scores = hdbench.score(model, references=references, quick=quick, benchmarks=benchmarks,
                           name="my-gru", store=store)
    print(scores[["benchmark", "raw", "normalised", "note"]].to_string(index=False))
    print(scores.attrs["summary"][["reference", "family", "normalised", "coverage"]]
          .to_string(index=False))
    board = ROOT / "results" / ("quick" if quick else "") / "leaderboard.csv"
    ranking = hdbench.rank(scores, hdbench.load_leaderboard(board))
    print(ranking.to_string(index=False))
    return scores, ranking


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the published (full) protocol")
    args = parser.parse_args()
    main(quick=not args.full)
