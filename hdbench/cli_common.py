"""What the ``hdbench`` commands share: argument types, the runner options, one-line errors."""

from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def nonneg_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {value}")
    return value


def set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def runner_options(args, **overrides) -> dict:
    """The :class:`~hdbench.scoring.runner.Runner` settings of a command's options."""
    options = dict(store=args.cache, jobs=args.jobs, dask_scheduler=args.dask_scheduler,
                   force=args.force, retry_failed=not args.skip_failed, dry_run=args.dry_run,
                   progress=not args.quiet)
    options.update(overrides)
    return options


def add_runner_options(p, jobs_help: str, jobs_default: int | None = 1) -> None:
    """Options of every command that computes through the runner (cached, resumable)."""
    p.add_argument("--jobs", type=positive_int, default=jobs_default, help=jobs_help)
    p.add_argument("--dask-scheduler", metavar="ADDRESS",
                   help="run the jobs on this Dask scheduler (e.g. tcp://127.0.0.1:8786)")
    p.add_argument("--dry-run", action="store_true", help="list the jobs that would run")
    p.add_argument("--cache", metavar="DIR",
                   help="run cache (default $HDBENCH_HOME or ~/.cache/hdbench)")
    p.add_argument("--force", action="store_true",
                   help="recompute scores and measurements even when cached (trained runs are "
                        "reused while their config and the training code are unchanged)")
    p.add_argument("--skip-failed", action="store_true",
                   help="do not retry jobs whose failure is recorded in the cache")


class Parser(argparse.ArgumentParser):
    """Bad command-line input gets one line on stderr (exit 2), not a usage dump."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
