"""Side-by-side timing of the integration core against its floor and its alternatives.

    python -m benchmarks.compare_core [--quick | --full] [--wall]

In one process, float32, one torch thread, every job of a table interleaved with the others and
timed best of N (a shared machine slows a job that happens to run at a busy moment; the best of
interleaved repeats compares like with like):

- **floor**: the T matrix products ``[B, N] @ [N, N]`` that any implementation needs (forward),
  and the 3 per step of a training step (forward, ``dL/dh`` and ``dL/dW``), with
  ``torch.mm(..., out=...)`` into preallocated outputs (BLAS, e.g. MKL);
- **kernel floor**: the same products with the core's own product kernel (``_kernels.h``: on
  AVX-512 CPUs a hand-written kernel, elsewhere BLAS), called T times from C++;
- **naive**: the per-step loop a user writes (``x[:, t] @ U.T``, ``torch.tanh``, autograd);
- **nn.RNN**: ``torch.nn.RNN`` (tanh) of the same size, the built-in C++ loop;
- **core**: :func:`hdbench.core.integrate` with the inputs folded into the recurrent product
  (``input_weight``), and **core, dense drive** with the drive ``x Uᵀ + b`` formed first; each
  with the compiled loop (``hdbench/core/_loop.cpp``, when it builds) and, as **PyTorch loop**,
  with the fallback loop in Python.

All of them map inputs ``[B, T, 3]`` to rates ``[B, T, N]`` (retanh for naive and the core);
"fwd+bwd" adds ``rates.square().mean().backward()``. Ratios are against the floor, the kernel
floor, nn.RNN and naive of the same shape.

Then **training updates** (the trainer's loop body: trials, noisy forward, loss, backward,
clipping, AdamW; ``bench_core._TrainingUpdate``) of the default CTRNN, a softplus CTRNN, the
GRU, the LSTM and the tanh RNN, interleaved with the training floor, as ratios to that floor
and to the CTRNN update; and the default CTRNN run end to end (``trainer.train`` stopped after
1 and 1 + n updates; the difference is the per-update cost) extrapolated to 5000 updates with
validation.

Times are process CPU time by default, which on a shared machine is far steadier than wall time
(with one thread they agree when the machine is idle); ``--wall`` uses wall time.
"""

from __future__ import annotations

import argparse
import functools
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
GATED = ("gru", "lstm", "vanilla")


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

    def kernel_forward(self):
        _native.ops().matmul(self.h, self.Wt, self.out, 0.0, self.T)

    def kernel_training(self):
        ext = _native.ops()
        ext.matmul(self.h, self.Wt, self.out, 0.0, self.T)
        ext.matmul(self.p, self.Wt, self.out, 0.0, self.T)
        ext.matmul(self.p.t(), self.h, self.out_w, 1.0, self.T)

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
FLOORS = {"floor": (Case.floor_forward, Case.floor_training),
          "kernel floor": (Case.kernel_forward, Case.kernel_training)}


def _forward(method):
    def run(case):
        with torch.no_grad():
            method(case)
    return run


def _training(method):
    def run(case):
        method(case).square().mean().backward()
    return run


def best_interleaved(jobs: dict, repeats: int, clock) -> dict:
    """Best-of-``repeats`` seconds of every job, the jobs run in turn within each repeat."""
    for job in jobs.values():  # warm-up: first-touch allocations, lazy initialisation
        job()
    best = dict.fromkeys(jobs, float("inf"))
    for _ in range(repeats):
        for key, job in jobs.items():
            start = clock()
            job()
            best[key] = min(best[key], clock() - start)
    return best


def measure_cases(cases, repeats: int, clock) -> list[dict]:
    """Best-of-``repeats`` seconds of every method and mode, interleaved within each shape."""
    floors = FLOORS if _native.ops() is not None else {"floor": FLOORS["floor"]}
    rows = []
    for B, N, T in cases:
        case = Case(B, N, T)
        jobs = {}
        for name, (forward, training) in floors.items():
            jobs[(name, "fwd")] = functools.partial(forward, case)
            jobs[(name, "fwd+bwd")] = functools.partial(training, case)
        for name, method in METHODS.items():
            jobs[(name, "fwd")] = functools.partial(_forward(method), case)
            jobs[(name, "fwd+bwd")] = functools.partial(_training(method), case)
        best = best_interleaved(jobs, repeats, clock)
        for name in [*floors, *METHODS]:
            row = {"shape": f"B={B} N={N} T={T}", "method": name}
            for mode in ("fwd", "fwd+bwd"):
                row[mode] = best[(name, mode)]
                for ref in ("floor", "kernel floor", "nn.RNN", "naive"):
                    if (ref, mode) in best:
                        row[f"{mode}/{ref}"] = best[(name, mode)] / best[(ref, mode)]
            rows.append(row)
    return rows


def print_table(rows: list[dict]) -> None:
    header = (f"{'shape':<20} {'method':<20} {'fwd ms':>8} {'xfloor':>7} {'xkern':>6} "
              f"{'xRNN':>6} {'xnaive':>6}   {'f+b ms':>8} {'xfloor':>7} {'xkern':>6} "
              f"{'xRNN':>6} {'xnaive':>6}")
    print(header)
    print("-" * len(header))
    shape = None
    for row in rows:
        label = row["shape"] if row["shape"] != shape else ""
        shape = row["shape"]
        cells = []
        for mode in ("fwd", "fwd+bwd"):
            kernel = row.get(f"{mode}/kernel floor")
            cells.append(f"{row[mode] * 1e3:8.2f} {row[f'{mode}/floor']:7.2f} "
                         f"{'-' if kernel is None else f'{kernel:.2f}':>6} "
                         f"{row[f'{mode}/nn.RNN']:6.2f} {row[f'{mode}/naive']:6.2f}")
        print(f"{label:<20} {row['method']:<20} {cells[0]}   {cells[1]}")


def measure_updates(repeats: int, clock, torch_nn: bool = False) -> dict:
    """Seconds of one training update (best of ``repeats``, interleaved): the default CTRNN with
    the compiled and the PyTorch loop, the gated baselines (and, with ``torch_nn``, the gated
    baselines on ``torch.nn``), and the training floor of the Cueva shape."""
    from .bench_core import _TrainingUpdate

    case = Case(100, 100, 500)
    jobs = {"floor (3 products/step)": case.floor_training}
    if _native.ops() is not None:
        jobs["kernel floor"] = case.kernel_training
    steps = {"ctrnn": _TrainingUpdate(100),
             "ctrnn, softplus": _TrainingUpdate(100, activation="softplus")}
    for model in GATED:
        steps[model] = _TrainingUpdate(100, model=model)
    for name, step in steps.items():
        jobs[name] = step
    jobs["ctrnn, PyTorch loop"] = _without_extension(steps["ctrnn"])
    if torch_nn:
        for model in GATED:
            jobs[f"{model}, torch.nn"] = _without_extension(steps[model])
    return best_interleaved(jobs, repeats, clock)


def _without_extension(job):
    """``job`` with the compiled loops off: the core's PyTorch loop, torch.nn for gated models."""
    def run():
        with _native.enabled(False):
            return job()
    return run


def print_updates(best: dict) -> None:
    floor, ctrnn = best["floor (3 products/step)"], best["ctrnn"]
    kernel = best.get("kernel floor")
    print(f"{'job':<24} {'ms':>8} {'xfloor':>7} {'xkern':>6} {'xctrnn':>7}")
    for name, seconds in best.items():
        print(f"{name:<24} {seconds * 1e3:8.2f} {seconds / floor:7.2f} "
              f"{'-' if kernel is None else f'{seconds / kernel:.2f}':>6} "
              f"{seconds / ctrnn:7.2f}")


def measure_training_run(updates: int, clock, compiled: bool = True) -> dict:
    """Default CTRNN training (``hdbench.training.trainer.train``), timed along its own code path.

    ``per_update``: the difference between runs stopped after ``1 + updates`` and after 1 update
    (setup and the final checkpoint cancel out), divided by ``updates``. ``validation``: one
    validation pass (the run does one every ``val_every`` updates). ``compiled``: the core's
    compiled loop (when available) or its PyTorch loop.
    """
    with _native.enabled(compiled):
        return _measure_training_run(updates, clock)


def _measure_training_run(updates: int, clock) -> dict:
    from hdbench.training import trainer
    from hdbench.training.config import TrainConfig

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
    validation = []
    for _ in range(3):
        start = clock()
        trainer.evaluate_ne(model, val)
        validation.append(clock() - start)
    return {"per_update": (long - short) / updates, "validation": min(validation),
            "val_every": config.val_every}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare_core",
                                     description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true",
                      help="only the Cueva shape and B=64, 3 repeats (about a minute)")
    size.add_argument("--full", action="store_true",
                      help="B in {1, 64, 100, 512} x N in {100, 1000}, 7 repeats, and the gated "
                           "baselines on torch.nn (many minutes)")
    parser.add_argument("--wall", action="store_true",
                        help="wall-clock time instead of process CPU time")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    keep_large_allocations()  # as in training and scoring processes, for every method alike
    clock = time.perf_counter if args.wall else time.process_time
    cases = QUICK_CASES if args.quick else FULL_CASES if args.full else DEFAULT_CASES
    repeats = 3 if args.quick else 7
    print(f"torch {torch.__version__}, 1 thread, float32, best of {repeats} interleaved, "
          f"{'wall' if args.wall else 'process CPU'} time; naive and core use retanh")
    status = _native.status()
    print("compiled loop: " + ("available" if status["available"] else
                               f"UNAVAILABLE ({status['error'] or 'disabled'}); 'core' rows use "
                               f"the PyTorch loop too"))
    print_table(measure_cases(cases, repeats, clock))

    print(f"\nOne training update (trials, noisy forward, loss, backward, clipping, AdamW; "
          f"B=100, N=100, T=500), best of {repeats} interleaved:")
    print_updates(measure_updates(repeats, clock, torch_nn=args.full))

    updates = 3 if args.quick else 10 if args.full else 5
    print("\nDefault CTRNN run, trainer.train end to end (per update: difference of runs of 1 "
          f"and {1 + updates} updates), target <= 4 min:")
    for compiled in (True, False):
        t = measure_training_run(updates, clock, compiled)
        total = 5000 * t["per_update"] + 5000 // t["val_every"] * t["validation"]
        print(f"  {'compiled loop' if compiled else 'PyTorch loop':<14} "
              f"{t['per_update'] * 1e3:6.1f} ms per update; 5000 updates ~ "
              f"{5000 * t['per_update'] / 60:.1f} min, plus validation every {t['val_every']} "
              f"updates ({t['validation']:.2f} s each) = {total / 60:.1f} min")


if __name__ == "__main__":
    main()
