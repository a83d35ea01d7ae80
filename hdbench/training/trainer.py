"""The optimisation loop: fresh trials every update, validation-based selection, resume.

It writes a run directory (layout: :mod:`hdbench.runs`): ``config.json`` first, then
``checkpoint.pt`` (model, optimiser, λ_r, history, best model so far) and ``history.csv`` every
``checkpoint_every`` updates, and ``model.pt`` (the lowest-validation-NE model) and
``metrics.json`` at the end; with a teacher also ``recorded.json``
(:mod:`hdbench.training.recordings`). Every file is written atomically and the directory is
locked while training, so an interrupted run can always be resumed and two processes never
write one run. A loss that becomes non-finite stops training with ``status: diverged``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from hdbench import runs
from hdbench._version import __version__
from hdbench.atomic import check_out_dir
from hdbench.core.allocator import keep_large_allocations
from hdbench.errors import HdbenchError
from hdbench.task import (
    TEST_STREAM,
    TRAIN_STREAM,
    VALIDATION_STREAM,
    get_spec,
    make_trials,
    seed_for,
)
from hdbench.training import checkpoint, recordings
from hdbench.training.config import TrainConfig
from hdbench.training.losses import masked_mse, normalized_error, rate_penalty
from hdbench.versions import training_identity

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


class TrainingDiverged(HdbenchError):
    """The loss became non-finite before any finite validation: there is no model to keep."""


def _memory_available() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_resources(config: TrainConfig) -> None:
    """Refuse a run whose tensors cannot fit in memory, before anything is allocated."""
    need = config.estimated_memory_bytes()
    available = _memory_available()
    if available is not None and need > available:
        units = config.model_options.get("n_units", 100)
        raise HdbenchError(
            f"this run needs about {need / 2**30:.3g} GiB (batch {config.batch_size} x "
            f"{get_spec(config.task).n_steps} steps x {units} units, {config.val_trials} "
            f"validation and {config.test_trials} test trials) but only "
            f"{available / 2**30:.3g} GiB are available; use a smaller batch or network")


def _prepare_run_dir(config: TrainConfig, run_dir: Path, resume: bool) -> tuple[dict | None,
                                                                                   bool]:
    """Check the (locked) run directory; return (the saved state when resuming, whether
    config.json was written now)."""
    config_file = run_dir / runs.CONFIG_FILE
    if config_file.exists():
        stored = runs.Run.load(run_dir)
        if not resume:
            raise HdbenchError(f"{run_dir} already holds a run; pass --resume to continue it or "
                               "choose another output directory")
        if stored.config != config:
            raise HdbenchError(f"{run_dir} holds a run with a different config; resume it with "
                               "the same options or choose another output directory")
        if not stored.matches_code():
            raise HdbenchError(f"{stored.code_mismatch()}; resuming would mix two code "
                               "versions: start a new run directory")
        state_file = run_dir / runs.CHECKPOINT_FILE
        if not state_file.exists():
            return None, False
        state = checkpoint.load(state_file, kind="train-state")
        try:
            saved = TrainConfig.from_dict(json.loads(state["config"]))
        except (KeyError, TypeError, ValueError, HdbenchError):
            raise HdbenchError(f"{state_file} has no readable config; the checkpoint is "
                               "damaged") from None
        if saved != config:
            raise HdbenchError(f"{state_file} was written by a run with another config than "
                               f"{config_file}; remove it or start a new run directory")
        return state, False
    if runs.holds_files(run_dir):
        raise HdbenchError(f"{run_dir} is not empty and holds no training run (no "
                           f"{runs.CONFIG_FILE}); choose an empty or new folder")
    checkpoint.atomic_write_text(
        config_file,
        json.dumps({"config": config.to_dict(), "run_hash": config.run_hash(),
                    "code": training_identity(), "hdbench_version": __version__},
                   indent=2, sort_keys=True),
    )
    return None, True


def train(config: TrainConfig, run_dir, *, resume: bool = False, progress: bool = True,
          stop_after: int | None = None) -> dict:
    """Train a model as configured, writing the run directory described in the module doc.

    Parameters
    ----------
    config : TrainConfig
    run_dir : path
        Output directory; must be new, empty, or hold this run (with ``resume``). It is locked
        while training: a second process training into it gets a one-line error.
    resume : bool
        Continue the run in ``run_dir`` from its last checkpoint (which must have been written
        by the same config and code). The result is identical to an uninterrupted run.
    progress : bool
        Show a progress bar with the current and validation NE.
    stop_after : int, optional
        Stop (with a checkpoint) once this many updates are done, as an interruption would;
        used to test resumption.

    Returns
    -------
    dict
        The contents of ``metrics.json`` (``test_ne``, ``best_val_ne``, ``best_update``,
        ``status`` = ``finished`` or ``diverged``, ...), or the partial state's summary when
        stopped early.

    Raises
    ------
    TrainingDiverged
        When the loss became non-finite before any finite validation (no model to keep); the
        status is recorded in ``metrics.json`` and a resume raises the same error.
    """
    run_dir = check_out_dir(run_dir)
    check_resources(config)
    model = build_model(config)  # a bad model name or option fails before the disk is touched
    teacher = recording = None
    if config.teacher is not None:  # so does a bad teacher, task or student size
        teacher = recordings.load_teacher(config.teacher)
        recording = recordings.recording_for(config, teacher)
    lock = runs.run_lock(run_dir).acquire()  # a second process is refused here, untouched
    wrote_config = False
    created = not run_dir.exists()
    try:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            probe = run_dir / f".write-test-{os.getpid()}.tmp"
            probe.write_text("")
            probe.unlink()
        except OSError as err:
            raise HdbenchError(f"cannot write to run directory {run_dir}: "
                               f"{err.strerror}") from None
        state, wrote_config = _prepare_run_dir(config, run_dir, resume)
        return _train(config, run_dir, model, state, teacher, recording, progress, stop_after)
    except TrainingDiverged:  # a result, recorded in metrics.json: kept
        raise
    except BaseException:
        # A start that fails before its first checkpoint leaves nothing behind.
        if wrote_config and not (run_dir / runs.CHECKPOINT_FILE).exists():
            for name in (runs.CONFIG_FILE, runs.HISTORY_FILE, recordings.RECORDED_FILE):
                (run_dir / name).unlink(missing_ok=True)
        if created and run_dir.is_dir() and not runs.holds_files(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    finally:
        lock.release()


def _diverged_metrics(run_dir: Path) -> dict | None:
    try:
        metrics = json.loads((run_dir / runs.METRICS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return metrics if isinstance(metrics, dict) and metrics.get("status") == "diverged" else None


def _train(config: TrainConfig, run_dir: Path, model, state, teacher, recording, progress,
           stop_after) -> dict:
    keep_large_allocations()
    diverged = _diverged_metrics(run_dir)
    if diverged is not None:
        if diverged.get("test_ne") is None:
            raise TrainingDiverged(_diverged_message(config, diverged))
        return diverged
    bank = None
    if teacher is not None:
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
    reached = config.reached_target(best["ne"])  # stopped early at the target before
    if start >= config.updates or reached:
        try:
            metrics = runs.Run.load(run_dir).metrics()
        except HdbenchError:  # damaged: recomputed below from the checkpoint's best model
            metrics = None
        if metrics is not None and "test_ne" in metrics:
            return metrics

    val = validation_trials(config)
    end = config.updates if stop_after is None else min(config.updates, stop_after)
    end = start if reached else end
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
        }, run_dir / runs.CHECKPOINT_FILE)
        _write_history(run_dir, history)

    diverged_at = None
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
        if not math.isfinite(loss.item()):
            diverged_at = update + 1
            break
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
            if not math.isfinite(val_ne):
                diverged_at = done
                break
            if val_ne < best["ne"]:
                best = {"ne": val_ne, "update": done,
                        "state": {k: v.clone() for k, v in model.state_dict().items()}}
            if config.reached_target(val_ne):  # early stop: this validation beat the target
                reached, end = True, done
        ne = normalized_error(outputs, y, m)
        for column, value in zip(HISTORY_COLUMNS, (done, loss.item(), mse.item(), ne, val_ne,
                                                   lam, lr), strict=True):
            history[column].append(value)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(ne=f"{ne:.4f}", best_val_ne=f"{best['ne']:.4f}")
        if done % config.checkpoint_every == 0 or done == end:
            save_state(done)
        if reached:
            break
    if bar is not None:
        bar.close()
    elapsed += time.perf_counter() - t0
    if diverged_at is None and end < config.updates and not reached:
        return {"stopped_at": end, "best_val_ne": best["ne"]}
    facts = {"train_wall_s": elapsed, "torch_threads": torch.get_num_threads(),
             "run_hash": config.run_hash(), "code": training_identity(),
             "hdbench_version": __version__}
    if diverged_at is not None:
        _write_history(run_dir, history)
        facts.update(status="diverged", diverged_at=diverged_at)
        if best["state"] is None:
            metrics = {"test_ne": None, "best_val_ne": None, "best_update": None, **facts}
            checkpoint.atomic_write_text(run_dir / runs.METRICS_FILE,
                                         json.dumps(metrics, indent=2))
            raise TrainingDiverged(_diverged_message(config, metrics))
    else:
        facts["status"] = "finished"

    model.load_state_dict(best["state"])
    test_ne = evaluate_ne(model, test_trials(config))
    checkpoint.save({"kind": "model", "model": config.model,
                     "model_options": json.dumps(build_model_options(config)),
                     "state": model.state_dict(), "config": config.to_json()},
                    run_dir / runs.MODEL_FILE)
    metrics = {"test_ne": test_ne, "best_val_ne": best["ne"], "best_update": best["update"],
               "final_val_ne": next((v for v in reversed(history["val_ne"])
                                     if not math.isnan(v)), math.nan), **facts}
    if config.target_val_ne is not None:
        metrics.update(reached_target=reached, updates_done=history["update"][-1]
                       if history["update"] else start)
    if bank is not None:
        metrics["test_activity_mse"] = recordings.activity_mse(model, recording,
                                                               test_trials(config))
        metrics["teacher_simulation_s"] = bank.simulated_s
        metrics["recording"] = recording.to_dict()
    checkpoint.atomic_write_text(run_dir / runs.METRICS_FILE, json.dumps(metrics, indent=2))
    return metrics


def _diverged_message(config: TrainConfig, metrics: dict) -> str:
    return (f"training diverged at update {metrics.get('diverged_at')} (non-finite loss or "
            f"validation NE) before any finite validation, so there is no model to keep; "
            f"lower the learning rate (lr {config.lr:g}) or the gradient clip "
            f"({config.grad_clip:g})")


def diverged_note(metrics: dict) -> str:
    """One line on a run that diverged after a finite validation ('' for a finished run)."""
    if metrics.get("status") != "diverged":
        return ""
    return (f"training diverged at update {metrics.get('diverged_at')} (non-finite loss or "
            f"validation NE); kept the best finite model (update {metrics.get('best_update')}, "
            f"validation NE {100 * metrics.get('best_val_ne', math.nan):.3g} %)")


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


def evaluate(run_dir, n_trials: int | None = None) -> dict:
    """Test NE (noise-free, held-out test stream) of a finished run's selected model."""
    run = runs.Run.load(run_dir)
    config = run.config
    if n_trials is not None:
        config = config.replace(test_trials=n_trials)
    return {"test_ne": evaluate_ne(run.model(), test_trials(config)), "task": config.task,
            "test_trials": config.test_trials}
