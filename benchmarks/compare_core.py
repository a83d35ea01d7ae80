"""Side-by-side timing of the integration core against its floor and its alternatives.

    python -m benchmarks.compare_core [--quick | --full] [--wall]

In one process, float32, one torch thread, interleaved, best of N:

- **GEMM floor**: the T matrix products ``[B, N] @ [N, N]`` that any implementation needs
  (forward), and the 3 per step of a training step (forward, ``dL/dh`` and ``dL/dW``);
- **naive**: the per-step loop a user writes (``x[:, t] @ U.T``, ``torch.tanh``, autograd);
- **nn.RNN**: ``torch.nn.RNN`` (tanh) of the same size, the built-in C++ loop;
- **core**: :func:`hdbench.core.integrate` with the inputs folded into the recurrent product
  (``input_weight``), and **core, dense drive** with the drive ``x Uᵀ + b`` formed first; each
  with the compiled loop (``hdbench/core/_loop.cpp``, when it builds) and, as **PyTorch loop**,
  with the fallback loop in Python.

All of them map inputs ``[B, T, 3]`` to rates ``[B, T, N]`` (retanh for naive and the core);
"fwd+bwd" adds ``rates.square().mean().backward()``. Ratios are against the floor, nn.RNN and
naive of the same shape. Finally it times one full default CTRNN training update (the trainer's
code path: trials, noisy forward, loss, backward, clipping, AdamW), with either loop, and
extrapolates to 5000.

Times are process CPU time by default, which on a shared machine is far steadier than wall time
(with one thread they agree when the machine is idle); ``--wall`` uses wall time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from hdbench.core import _native, integrate
from hdbench.core.allocator import keep_large_allocations

DEFAULT_CASES = [(100, 100, 500), (64, 100, 500), (1, 100, 500), (512, 100, 500),
                 (64, 1000, 100)]
FULL_CASES = [(b, n, 500 if n <= 100 else 100) for n in (100, 1000) for b in (1, 64, 100, 512)]
QUICK_CASES = DEFAULT_CASES[:2]
ALPHA, INPUTS = 0.1, 3


class Case:
    """Weights and inputs of one (B, N, T) shape, shared by every method."""

    def __init__(self, B: int, N: int, T: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.B, self.N, self.T = B, N, T
        self.x = 0.1 * torch.randn(B, T, INPUTS, generator=g)
        self.W = (1.5 / N**0.5 * torch.randn(N, N, generator=g)).requires_grad_()
        self.U = (torch.randn(N, INPUTS, generator=g) / INPUTS**0.5).requires_grad_()
        self.b = torch.full((N,), 0.1).requires_grad_()
        self.a0 = torch.zeros(N, requires_grad=True)
        self.mask = 1.0 - torch.eye(N)
        self.rnn = torch.nn.RNN(INPUTS, N, nonlinearity="tanh", batch_first=True)
        self.h = torch.randn(B, N, generator=g)
        self.p = torch.randn(B, N, generator=g)
        self.Wt = self.W.detach().t().contiguous()
        self.out = torch.empty(B, N)
        self.out_w = torch.empty(N, N)

    def floor_forward(self):
        for _ in range(self.T):
            torch.mm(self.h, self.Wt, out=self.out)

    def floor_training(self):
        for _ in range(self.T):
            torch.mm(self.h, self.Wt, out=self.out)
            torch.mm(self.p, self.Wt, out=self.out)
            torch.mm(self.p.t(), self.h, out=self.out_w)

    def naive(self):
        """The obvious per-step loop (retanh, the CTRNN's update)."""
        W = self.W * self.mask
        a = self.a0.expand(self.B, self.N)
        h = torch.relu(torch.tanh(a))
        rates = []
        for t in range(self.T):
            a = a + ALPHA * (-a + h @ W.T + self.x[:, t] @ self.U.T + self.b)
            h = torch.relu(torch.tanh(a))
            rates.append(h)
        return torch.stack(rates, dim=1)

    def nn_rnn(self):
        return self.rnn(self.x)[0]

    def core(self):
        return integrate(self.x, self.W, self.a0, ALPHA, input_weight=self.U, input_bias=self.b,
                         W_mask=self.mask)

    def core_dense(self):
        drive = torch.nn.functional.linear(self.x, self.U, self.b)
        return integrate(drive, self.W, self.a0, ALPHA, W_mask=self.mask)


def _pytorch_loop(method):
    """``method`` with the core's fallback (Python) loop; the backward follows the forward's."""
    def run(case):
        with _native.enabled(False):
            return method(case)
    return run


METHODS = {"naive": Case.naive, "nn.RNN": Case.nn_rnn, "core": Case.core,
           "core, PyTorch loop": _pytorch_loop(Case.core),
           "core, dense drive": Case.core_dense,
           "core, dense, PyTorch": _pytorch_loop(Case.core_dense)}


def _forward(method):
    def run(case):
        with torch.no_grad():
            method(case)
    return run


def _training(method):
    def run(case):
        method(case).square().mean().backward()
    return run


def measure_cases(cases, repeats: int, clock) -> list[dict]:
    """Best-of-``repeats`` seconds of every method and mode, interleaved within each shape."""
    rows = []
    for B, N, T in cases:
        case = Case(B, N, T)
        jobs = {("floor", "fwd"): Case.floor_forward, ("floor", "fwd+bwd"): Case.floor_training}
        for name, method in METHODS.items():
            jobs[(name, "fwd")] = _forward(method)
            jobs[(name, "fwd+bwd")] = _training(method)
        best = dict.fromkeys(jobs, float("inf"))
        for job in jobs.values():  # warm-up: first-touch allocations, lazy initialisation
            job(case)
        for _ in range(repeats):
            for key, job in jobs.items():
                start = clock()
                job(case)
                best[key] = min(best[key], clock() - start)
        for name in ["floor", *METHODS]:
            row = {"shape": f"B={B} N={N} T={T}", "method": name}
            for mode in ("fwd", "fwd+bwd"):
                row[mode] = best[(name, mode)]
                for ref in ("floor", "nn.RNN", "naive"):
                    row[f"{mode}/{ref}"] = best[(name, mode)] / best[(ref, mode)]
            rows.append(row)
    return rows


def print_table(rows: list[dict]) -> None:
    header = (f"{'shape':<20} {'method':<20} {'fwd ms':>8} {'xfloor':>7} {'xRNN':>6} "
              f"{'xnaive':>6}   {'f+b ms':>8} {'xfloor':>7} {'xRNN':>6} {'xnaive':>6}")
    print(header)
    print("-" * len(header))
    shape = None
    for row in rows:
        label = row["shape"] if row["shape"] != shape else ""
        shape = row["shape"]
        cells = []
        for mode in ("fwd", "fwd+bwd"):
            cells.append(f"{row[mode] * 1e3:8.2f} {row[f'{mode}/floor']:7.2f} "
                         f"{row[f'{mode}/nn.RNN']:6.2f} {row[f'{mode}/naive']:6.2f}")
        print(f"{label:<20} {row['method']:<20} {cells[0]}   {cells[1]}")


def measure_training_update(updates: int, clock, compiled: bool = True) -> dict:
    """Default CTRNN training (``hdbench.training.trainer.train``), timed along its own code path.

    ``per_update``: the difference between runs stopped after ``1 + updates`` and after 1 update
    (setup and the final checkpoint cancel out), divided by ``updates``. ``validation``: one
    validation pass (the run does one every ``val_every`` updates). ``steps``: seconds of each
    update of the loop body alone (``bench_core._TrainingUpdate``). ``compiled``: the core's
    compiled loop (when available) or its PyTorch loop.
    """
    with _native.enabled(compiled):
        return _measure_training_update(updates, clock)


def _measure_training_update(updates: int, clock) -> dict:
    from hdbench.training import trainer
    from hdbench.training.config import TrainConfig

    from .bench_core import _TrainingUpdate

    config = TrainConfig()
    with tempfile.TemporaryDirectory() as tmp:
        def train(n, name):
            start = clock()
            trainer.train(config, Path(tmp) / name, progress=False, stop_after=n)
            return clock() - start

        short = min(train(1, "a"), train(1, "b"))
        long = min(train(1 + updates, "c"), train(1 + updates, "d"))
    model = trainer.build_model(config)
    val = trainer.validation_trials(config)
    start = clock()
    trainer.evaluate_ne(model, val)
    validation = clock() - start
    step = _TrainingUpdate(config.batch_size)
    step()
    steps = []
    for _ in range(updates):
        start = clock()
        step()
        steps.append(clock() - start)
    return {"per_update": (long - short) / updates, "validation": validation,
            "val_every": config.val_every, "steps": steps}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare_core",
                                     description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true",
                      help="only the Cueva shape and B=64, 3 repeats (about half a minute)")
    size.add_argument("--full", action="store_true",
                      help="B in {1, 64, 100, 512} x N in {100, 1000}, 7 repeats (many minutes)")
    parser.add_argument("--wall", action="store_true",
                        help="wall-clock time instead of process CPU time")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    keep_large_allocations()  # as in training and scoring processes, for every method alike
    clock = time.perf_counter if args.wall else time.process_time
    cases = QUICK_CASES if args.quick else FULL_CASES if args.full else DEFAULT_CASES
    repeats = 3 if args.quick else 7 if args.full else 5
    print(f"torch {torch.__version__}, 1 thread, float32, best of {repeats}, "
          f"{'wall' if args.wall else 'process CPU'} time; naive and core use retanh")
    status = _native.status()
    print("compiled loop: " + ("available" if status["available"] else
                               f"UNAVAILABLE ({status['error'] or 'disabled'}); 'core' rows use "
                               f"the PyTorch loop too"))
    print_table(measure_cases(cases, repeats, clock))

    updates = 3 if args.quick else 10 if args.full else 5
    print("\nDefault CTRNN training (B=100, N=100, T=500, noise 0.1, AdamW), trainer.train "
          f"(per update: difference of runs of 1 and {1 + updates} updates), target <= 8 min:")
    for compiled in (True, False):
        t = measure_training_update(updates, clock, compiled)
        total = 5000 * t["per_update"] + 5000 // t["val_every"] * t["validation"]
        print(f"  {'compiled loop' if compiled else 'PyTorch loop':<14} "
              f"{t['per_update'] * 1e3:6.1f} ms per update; loop body alone: best "
              f"{min(t['steps']) * 1e3:.1f} ms, median {statistics.median(t['steps']) * 1e3:.1f} "
              f"ms; 5000 updates ~ {5000 * t['per_update'] / 60:.1f} min, plus validation every "
              f"{t['val_every']} updates ({t['validation']:.2f} s each) = {total / 60:.1f} min")


if __name__ == "__main__":
    main()
