"""asv benchmarks of the integration core (hdbench.core) and of training updates.

- ``CoreForward`` / ``CoreTraining``: :func:`hdbench.core.integrate` on task-like inputs
  ``[B, T, 3]`` folded into the recurrent product (retanh, zero-diagonal mask), without and with
  ``rates.square().mean().backward()``. ``track_gflops`` counts only the recurrent matrix
  products (2·B·N²·T forward, 3x that for a training step). ``track_ratio_to_floor`` times the
  method and its floor (the same products with ``torch.mm`` into preallocated outputs)
  interleaved, best of 5 each, and reports the ratio; targets at the Cueva shape (B = 100,
  N = 100, T = 500): forward <= 1.6, forward + backward <= 2.
- ``TrainingUpdate``: one update of a default training run (100 trials x 500 steps, noise,
  masked MSE + rate penalty, clipping, AdamW) of the CTRNN and of the gated baselines;
  ``track_ratio_to_floor`` against the training floor (3 products per step; target <= 2 for the
  CTRNN), ``track_minutes_per_5000_updates`` (target <= 4 for the CTRNN).

The core runs its compiled loop when it builds (``hdbench.core._native``; set
``HDBENCH_NO_EXTENSION=1`` to time the PyTorch loop); ``python -m benchmarks.compare_core`` times
both side by side.

Timings use process CPU time on one torch thread: on a shared 2-core machine wall time of the
same code swings 2-3x, CPU time a few percent.
"""

import time

import torch

from hdbench.core import integrate

CPU_TIMER = time.process_time
RATIO_REPEATS = 5


def _interleaved_ratio(method, floor, repeats=RATIO_REPEATS):
    """best(method) / best(floor), the two timed in turn ``repeats`` times after a warm-up."""
    floor()
    method()
    best_method = best_floor = float("inf")
    for _ in range(repeats):
        start = CPU_TIMER()
        floor()
        best_floor = min(best_floor, CPU_TIMER() - start)
        start = CPU_TIMER()
        method()
        best_method = min(best_method, CPU_TIMER() - start)
    return best_method / best_floor


class _Floor:
    """The recurrent products of a [batch, units] x [units, units] loop, preallocated outputs."""

    def __init__(self, batch, units, steps):
        g = torch.Generator().manual_seed(1)
        self.steps = steps
        self.h, self.p = torch.randn(batch, units, generator=g), torch.randn(batch, units,
                                                                             generator=g)
        self.Wt = torch.randn(units, units, generator=g)
        self.out, self.out_w = torch.empty(batch, units), torch.empty(units, units)

    def forward(self):
        for _ in range(self.steps):
            torch.mm(self.h, self.Wt, out=self.out)

    def training(self):
        for _ in range(self.steps):
            torch.mm(self.h, self.Wt, out=self.out)
            torch.mm(self.p, self.Wt, out=self.out)
            torch.mm(self.p.t(), self.h, out=self.out_w)


class _Core:
    params = ([1, 64, 100], [100, 256], [100, 500])
    param_names = ["batch", "units", "steps"]
    timer = CPU_TIMER
    gemm_products = 1

    def setup(self, batch, units, steps):
        torch.set_num_threads(1)
        g = torch.Generator().manual_seed(0)
        self.x = 0.1 * torch.randn(batch, steps, 3, generator=g)
        self.W = (1.5 / units**0.5 * torch.randn(units, units, generator=g)).requires_grad_()
        self.U = torch.randn(units, 3, generator=g).requires_grad_()
        self.b = torch.full((units,), 0.1, requires_grad=True)
        self.a0 = torch.zeros(units, requires_grad=True)
        self.mask = 1.0 - torch.eye(units)
        self.floor = _Floor(batch, units, steps)

    def rates(self):
        return integrate(self.x, self.W, self.a0, 0.1, input_weight=self.U, input_bias=self.b,
                         W_mask=self.mask)

    def _best_seconds(self, repeat=3):
        best = float("inf")
        for _ in range(repeat):
            start = CPU_TIMER()
            self.run()
            best = min(best, CPU_TIMER() - start)
        return best

    def track_gflops(self, batch, units, steps):
        return self.gemm_products * 2 * batch * units**2 * steps / self._best_seconds() / 1e9

    track_gflops.unit = "GFLOP/s"

    def track_trial_steps_per_second(self, batch, units, steps):
        return batch * steps / self._best_seconds()

    track_trial_steps_per_second.unit = "trial-steps/s"

    def track_ratio_to_floor(self, batch, units, steps):
        floor = self.floor.forward if self.gemm_products == 1 else self.floor.training
        return _interleaved_ratio(self.run, floor)

    track_ratio_to_floor.unit = "x floor"


class CoreForward(_Core):
    """Simulation: no graph, rates only."""

    def run(self):
        with torch.no_grad():
            self.rates()

    def time_forward(self, batch, units, steps):
        self.run()

    def peakmem_forward(self, batch, units, steps):
        self.run()


class CoreTraining(_Core):
    """Forward with the graph, then backward through the hand-written BPTT."""

    gemm_products = 3

    def run(self):
        self.rates().square().mean().backward()

    def time_forward_backward(self, batch, units, steps):
        self.run()

    def peakmem_forward_backward(self, batch, units, steps):
        self.run()


class _TrainingUpdate:
    """One update of ``hdbench.training.trainer.train``'s loop (without validation/history).

    Mirrors the loop body; keep it in step with the trainer.
    """

    def __init__(self, batch_size=100, model="ctrnn", **model_options):
        from hdbench.training import trainer
        from hdbench.training.config import TrainConfig

        self.trainer = trainer
        self.config = TrainConfig(model=model, batch_size=batch_size,
                                  model_options=model_options)
        self.model = trainer.build_model(self.config)
        self.optimizer = trainer._optimizer(self.model, self.config)
        self.update = 0

    def __call__(self):
        from hdbench.task import TRAIN_STREAM, make_trials, seed_for
        from hdbench.training.losses import masked_mse

        trainer, config, model = self.trainer, self.config, self.model
        model.train()
        x, y, m = trainer._tensors(make_trials(config.task, config.batch_size,
                                               seed_for(TRAIN_STREAM, config.seed, self.update)))
        outputs, _, activity = trainer._training_forward(model, x, config, self.update)
        mse = masked_mse(outputs, y, m)
        loss = mse + config.rate_penalty * activity
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        self.optimizer.step()
        self.update += 1
        return loss.item(), mse.item(), activity.item()


class TrainingUpdate:
    """One default training update of each built-in model (and a 10-trial CTRNN one)."""

    params = (["ctrnn", "gru", "lstm", "vanilla"], [10, 100])
    param_names = ["model", "batch"]
    timer = CPU_TIMER

    def setup(self, model, batch):
        if model != "ctrnn" and batch != 100:
            raise NotImplementedError  # asv skips: the gated models at the default size only
        torch.set_num_threads(1)
        self.step = _TrainingUpdate(batch, model=model)
        self.step()  # first-touch allocations
        self.floor = _Floor(batch, 100, 500)

    def time_update(self, model, batch):
        self.step()

    def peakmem_update(self, model, batch):
        self.step()

    def track_minutes_per_5000_updates(self, model, batch):
        best = float("inf")
        for _ in range(3):
            start = CPU_TIMER()
            self.step()
            best = min(best, CPU_TIMER() - start)
        return best * 5000 / 60

    track_minutes_per_5000_updates.unit = "min"

    def track_ratio_to_floor(self, model, batch):
        return _interleaved_ratio(self.step, self.floor.training)

    track_ratio_to_floor.unit = "x floor"
