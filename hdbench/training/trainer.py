"""The optimisation loop: fresh trials every update, validation-based selection, resume.

A run directory holds

- ``config.json``   the :class:`TrainConfig` (written first; identifies the run);
- ``checkpoint.pt`` the resumable state (model, optimiser, λ_r, history, best model so far);
- ``history.csv``   update, loss, NE of the training batch, validation NE where measured;
- ``model.pt``      the selected (lowest validation NE) model, written at the end;
- ``metrics.json``  test NE of the selected model and run facts, written at the end;
- ``recorded.json`` with a teacher only: the recorded teacher neurons, their student units and
  rate scales (:mod:`hdbench.training.recordings`; also in ``metrics.json["recording"]``).

Every file is written atomically, so an interrupted run can always be resumed.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from hdbench import __version__
from hdbench.core.allocator import keep_large_allocations
from hdbench.errors import HdbenchError
from hdbench.task import (
    TEST_STREAM,
    TRAIN_STREAM,
    VALIDATION_STREAM,
    make_trials,
    seed_for,
)
from hdbench.training import checkpoint, recordings
from hdbench.training.config import TrainConfig
from hdbench.training.losses import masked_mse, normalized_error, rate_penalty

NOISE_STREAM = 4
HISTORY_COLUMNS = ("update", "loss", "mse", "ne", "val_ne", "rate_penalty", "lr")


def _tensors(trials):
    return (torch.as_tensor(trials.inputs), torch.as_tensor(trials.targets),
            torch.as_tensor(trials.mask))


def build_model(config: TrainConfig):
    from hdbench.models import build

    return build(config.model, **build_model_options(config))


@torch.no_grad()
def evaluate_ne(model, trials) -> float:
    """Noise-free NE of ``model`` on ``trials``."""
    model.eval()
    x, y, m = _tensors(trials)
    outputs, _ = model(x)
    return normalized_error(outputs, y, m)


def validation_trials(config: TrainConfig):
    return make_trials(config.task, config.val_trials, seed_for(VALIDATION_STREAM, 0))


def test_trials(config: TrainConfig):
    return make_trials(config.task, config.test_trials, seed_for(TEST_STREAM, 0))


def _learning_rate(config: TrainConfig, update: int) -> float:
    if config.lr_schedule == "constant":
        return config.lr
    progress = update / max(1, config.updates - 1)
    low = config.lr * config.lr_final_factor
    return low + 0.5 * (config.lr - low) * (1.0 + math.cos(math.pi * progress))


def _noise_generator(config: TrainConfig, update: int) -> torch.Generator:
    state = np.random.SeedSequence(seed_for(NOISE_STREAM, config.seed, update)).generate_state(2)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def _training_forward(model, x, config: TrainConfig, update: int):
    """``(outputs, rates, mean(rates²))`` of the noisy training pass of ``update``: the model's
    fused ``training_forward`` when it has one, else its forward and the penalty."""
    generator = _noise_generator(config, update)
    fused = getattr(model, "training_forward", None)
    if fused is not None:
        return fused(x, noise_std=config.noise_std, generator=generator)
    outputs, rates = model(x, noise_std=config.noise_std, generator=generator)
    return outputs, rates, rate_penalty(rates)


def _write_history(run_dir: Path, history: dict) -> None:
    lines = [",".join(HISTORY_COLUMNS)]
    for row in zip(*(history[c] for c in HISTORY_COLUMNS), strict=True):
        lines.append(",".join("" if (isinstance(v, float) and math.isnan(v)) else repr(v)
                              for v in row))
    checkpoint.atomic_write_text(run_dir / "history.csv", "\n".join(lines) + "\n")


def _prepare_run_dir(config: TrainConfig, run_dir: Path, resume: bool) -> dict | None:
    """Create or check the run directory; return the saved state when resuming."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise HdbenchError(f"cannot write to run directory {run_dir}: {err.strerror}") from None
    config_file = run_dir / "config.json"
    if config_file.exists():
        stored = TrainConfig.from_dict(json.loads(config_file.read_text())["config"])
        if not resume:
            raise HdbenchError(
                f"{run_dir} already holds a run; pass --resume to continue it or choose "
                "another output directory"
            )
        if stored != config:
            raise HdbenchError(
                f"{run_dir} holds a run with a different config; resume it with the same "
                "options or choose another output directory"
            )
        state_file = run_dir / "checkpoint.pt"
        return checkpoint.load(state_file, kind="train-state") if state_file.exists() else None
    checkpoint.atomic_write_text(
        config_file,
        json.dumps({"config": config.to_dict(), "run_hash": config.run_hash(),
                    "hdbench_version": __version__}, indent=2, sort_keys=True),
    )
    return None


def train(config: TrainConfig, run_dir, *, resume: bool = False, progress: bool = True,
          stop_after: int | None = None) -> dict:
    """Train a model as configured, writing the run directory described in the module doc.

    Parameters
    ----------
    config : TrainConfig
    run_dir : path
        Output directory; must not hold another run unless ``resume``.
    resume : bool
        Continue the run in ``run_dir`` from its last checkpoint. The result is identical to
        an uninterrupted run with the same config.
    progress : bool
        Show a progress bar with the current and validation NE.
    stop_after : int, optional
        Stop (with a checkpoint) once this many updates are done, as an interruption would;
        used to test resumption.

    Returns
    -------
    dict
        The contents of ``metrics.json`` (``test_ne``, ``best_val_ne``, ``best_update``, ...),
        or the partial state's summary when stopped early.
    """
    run_dir = Path(run_dir)
    model = build_model(config)  # a bad model name or option fails before the disk is touched
    keep_large_allocations()
    bank = None
    if config.teacher is not None:  # so does a bad teacher, task or student size
        teacher = recordings.load_teacher(config.teacher)
        recording = recordings.recording_for(config, teacher)
    state = _prepare_run_dir(config, run_dir, resume)
    if config.teacher is not None:
        checkpoint.atomic_write_text(run_dir / recordings.RECORDED_FILE,
                                     json.dumps(recording.to_dict(), indent=2))
        bank = recordings.TeacherBank(config, recording, teacher)
    optimizer = _optimizer(model, config)
    history = {c: [] for c in HISTORY_COLUMNS}
    start, lam, best = 0, config.rate_penalty, {"ne": math.inf, "update": -1, "state": None}
    elapsed = 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history = {c: list(state["history"][c]) for c in HISTORY_COLUMNS}
        start, lam, elapsed = int(state["update"]), float(state["rate_penalty"]), \
            float(state["elapsed_s"])
        best = {"ne": float(state["best_val_ne"]), "update": int(state["best_update"]),
                "state": state["best_model"]}
    if start >= config.updates and (run_dir / "metrics.json").exists():
        return json.loads((run_dir / "metrics.json").read_text())

    val = validation_trials(config)
    end = config.updates if stop_after is None else min(config.updates, stop_after)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.updates, initial=start, desc=f"train {config.model}",
                   unit="upd", dynamic_ncols=True)
    t0 = time.perf_counter()

    def save_state(done: int):
        checkpoint.save({
            "kind": "train-state", "config": config.to_json(), "update": done,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "rate_penalty": lam, "history": history, "best_val_ne": best["ne"],
            "best_update": best["update"], "best_model": best["state"],
            "elapsed_s": elapsed + time.perf_counter() - t0,
        }, run_dir / "checkpoint.pt")
        _write_history(run_dir, history)

    for update in range(start, end):
        model.train()
        lr = _learning_rate(config, update)
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_factor"]
        if bank is None:
            x, y, m = _tensors(make_trials(config.task, config.batch_size,
                                           seed_for(TRAIN_STREAM, config.seed, update)))
        else:
            x, y, m, recorded = bank.batch(update)
        outputs, rates, activity = _training_forward(model, x, config, update)
        mse = masked_mse(outputs, y, m)
        loss = mse + lam * activity
        if bank is not None and recording.k:
            loss = loss + config.activity_weight * recordings.activity_loss(
                rates, recorded, recording.student_units, m)
        if config.weight_l2 > 0:
            loss = loss + config.weight_l2 * sum(w.pow(2).mean() for w in _in_out_weights(model))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        if config.adaptive_rate_penalty and lam * activity.item() >= 0.5 * mse.item():
            lam *= 2.0 / 3.0

        done = update + 1
        val_ne = math.nan
        if done % config.val_every == 0 or done == config.updates:
            val_ne = evaluate_ne(model, val)
            if val_ne < best["ne"]:
                best = {"ne": val_ne, "update": done,
                        "state": {k: v.clone() for k, v in model.state_dict().items()}}
        ne = normalized_error(outputs, y, m)
        for column, value in zip(HISTORY_COLUMNS, (done, loss.item(), mse.item(), ne, val_ne,
                                                   lam, lr), strict=True):
            history[column].append(value)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(ne=f"{ne:.4f}", best_val_ne=f"{best['ne']:.4f}")
        if done % config.checkpoint_every == 0 or done == end:
            save_state(done)
    if bar is not None:
        bar.close()
    elapsed += time.perf_counter() - t0
    if end < config.updates:
        return {"stopped_at": end, "best_val_ne": best["ne"]}

    model.load_state_dict(best["state"])
    test_ne = evaluate_ne(model, test_trials(config))
    checkpoint.save({"kind": "model", "model": config.model,
                     "model_options": json.dumps(build_model_options(config)),
                     "state": model.state_dict(), "config": config.to_json()},
                    run_dir / "model.pt")
    metrics = {"test_ne": test_ne, "best_val_ne": best["ne"], "best_update": best["update"],
               "final_val_ne": next((v for v in reversed(history["val_ne"])
                                     if not math.isnan(v)), math.nan),
               "train_wall_s": elapsed, "torch_threads": torch.get_num_threads(),
               "run_hash": config.run_hash(), "hdbench_version": __version__}
    if bank is not None:
        metrics["test_activity_mse"] = recordings.activity_mse(model, recording,
                                                               test_trials(config))
        metrics["teacher_simulation_s"] = bank.simulated_s
        metrics["recording"] = recording.to_dict()
    checkpoint.atomic_write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2))
    return metrics


def _optimizer(model, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with the input weights in their own group (``input_lr_factor``)."""
    inputs = {"U", "rnn.weight_ih_l0"}
    named = list(model.named_parameters())
    groups = [
        {"params": [p for n, p in named if n not in inputs], "lr_factor": 1.0},
        {"params": [p for n, p in named if n in inputs], "lr_factor": config.input_lr_factor},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=config.lr,
                             weight_decay=config.weight_decay)


def _in_out_weights(model) -> list[torch.Tensor]:
    """Input and readout weight matrices (for the optional R_L2 penalty)."""
    named = dict(model.named_parameters())
    return [named[k] for k in ("U", "rnn.weight_ih_l0", "V") if k in named]


def build_model_options(config: TrainConfig) -> dict:
    """The model's options: the config's, with the run seed as ``init_seed`` unless given."""
    options = dict(config.model_options)
    options.setdefault("init_seed", config.seed)
    return options


def load_model(run_dir):
    """The selected model of a finished run (or a ``model.pt`` path), in eval mode."""
    from hdbench.models import build

    path = Path(run_dir)
    path = path / "model.pt" if path.is_dir() else path
    if not path.exists():
        raise HdbenchError(f"{path} not found: is this a finished training run?")
    saved = checkpoint.load(path, kind="model")
    model = build(saved["model"], **json.loads(saved["model_options"]))
    try:
        model.load_state_dict(saved["state"])
    except RuntimeError as err:
        raise HdbenchError(f"{path} does not match its model config: {err}") from None
    return model.eval()


def evaluate(run_dir, n_trials: int | None = None) -> dict:
    """Test NE (noise-free, held-out test stream) of a finished run's selected model."""
    run_dir = Path(run_dir)
    config_file = run_dir / "config.json"
    if not config_file.exists():
        raise HdbenchError(f"{run_dir} is not a training run (no config.json)")
    config = TrainConfig.from_dict(json.loads(config_file.read_text())["config"])
    if n_trials is not None:
        config = config.replace(test_trials=n_trials)
    model = load_model(run_dir)
    return {"test_ne": evaluate_ne(model, test_trials(config)), "task": config.task,
            "test_trials": config.test_trials}
