"""asv benchmarks of the reference circuits (reference_circuits).

``Simulate``: ``simulate`` of 100 task trials × 500 steps of each circuit on its own preset
(rodent: 192 units, 4 Euler sub-steps per step; fly: 81 units, 20 sub-steps), plus smaller
batches; target: 100 × 500 in <= 1 s per circuit on 2 cores. ``Build``: constructing an instance
and its initial-bump template. torch runs on one thread, as the CLI does by default.
Run ``python benchmarks/bench_circuits.py`` for a plain timing table without asv.
"""

import time

import torch

import reference_circuits
from hdbench.task import make_trials


class Simulate:
    params = ([1, 10, 100], ["rodent", "fly"])
    param_names = ["trials", "circuit"]

    def setup(self, trials, circuit):
        torch.set_num_threads(1)
        self.circuit = reference_circuits.load(circuit)
        self.trials = make_trials(circuit, trials, seed=[3, 0])
        self.circuit.simulate(self.trials.inputs[:1, :20])  # build the initial-bump template

    def time_simulate(self, trials, circuit):
        self.circuit.simulate(self.trials)

    def peakmem_simulate(self, trials, circuit):
        self.circuit.simulate(self.trials)


class Build:
    params = ["rodent", "fly"]
    param_names = ["circuit"]

    def setup(self, circuit):
        torch.set_num_threads(1)
        self.inputs = make_trials(circuit, 1, seed=[3, 0]).inputs[:, :20]

    def time_build(self, circuit):
        reference_circuits.load(circuit, instance_seed=1).simulate(self.inputs)


if __name__ == "__main__":
    for trials, circuit in [(t, c) for c in Simulate.params[1] for t in Simulate.params[0]]:
        bench = Simulate()
        bench.setup(trials, circuit)
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            bench.time_simulate(trials, circuit)
            best = min(best, time.perf_counter() - start)
        print(f"{circuit:7s} {trials:4d} trials x 500 steps: {best:.3f} s")
