"""The ``hdbench`` command.

Heavy libraries (torch, pandas, seaborn, scikit-learn) are imported inside the commands that
need them, so that ``hdbench --help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import sys

from hdbench import __version__


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _nonneg_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def _set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def cmd_train(args) -> int:
    from hdbench.training import TrainConfig, train

    _set_threads(args.threads)
    options = {}
    if args.activation:
        options["activation"] = args.activation
    if args.units:
        options["n_units"] = args.units
    changes = {k: v for k, v in dict(
        updates=args.updates, batch_size=args.batch_size, lr=args.lr,
        lr_schedule=args.lr_schedule, weight_decay=args.weight_decay,
        rate_penalty=args.rate_penalty, noise_std=args.noise_std).items() if v is not None}
    config = TrainConfig(model=args.model, model_options=options, task=args.task,
                         seed=args.seed, **changes)
    from hdbench.models import build

    build(config.model, **options)  # unknown model or option: fail before touching the disk
    metrics = train(config, args.out, resume=args.resume, progress=not args.quiet)
    print(f"test NE {100 * metrics['test_ne']:.3f} % (best validation NE "
          f"{100 * metrics['best_val_ne']:.3f} % at update {metrics['best_update']}; "
          f"{metrics['train_wall_s']:.0f} s) -> {args.out}")
    return 0


def cmd_evaluate(args) -> int:
    from hdbench.training import evaluate

    _set_threads(args.threads)
    result = evaluate(args.run_dir, n_trials=args.trials)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"test NE {100 * result['test_ne']:.3f} % on {result['test_trials']} "
              f"noise-free {result['task']} trials")
    return 0


class _Parser(argparse.ArgumentParser):
    """Bad command-line input gets one line on stderr (exit 2), not a usage dump."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from hdbench.task import PRESETS

    parser = _Parser(
        prog="hdbench",
        description="Benchmark models of the head-direction system against reference circuits.",
    )
    parser.add_argument("--version", action="version", version=f"hdbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("train", help="train a model on the AV integration task")
    p.add_argument("--model", default="ctrnn",
                   help="model name: ctrnn, gru, lstm, vanilla (default ctrnn)")
    p.add_argument("--task", default="cueva-1x", choices=sorted(PRESETS), metavar="PRESET",
                   help=f"task preset, one of {', '.join(PRESETS)} (default cueva-1x)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--updates", type=_positive_int, help="parameter updates (default 5000)")
    p.add_argument("--batch-size", type=_positive_int)
    p.add_argument("--lr", type=float)
    p.add_argument("--lr-schedule", choices=["constant", "cosine"])
    p.add_argument("--weight-decay", type=_nonneg_float)
    p.add_argument("--rate-penalty", type=_nonneg_float, help="initial λ_r")
    p.add_argument("--noise-std", type=_nonneg_float, help="training rate-noise SD")
    p.add_argument("--activation", help="CTRNN rate function: retanh, tanh, relu, softplus")
    p.add_argument("--units", type=_positive_int, help="recurrent units (default 100)")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--threads", type=_positive_int, default=1, help="torch threads (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="test NE of a trained run")
    p.add_argument("run_dir")
    p.add_argument("--trials", type=_positive_int, help="test trials (default: the run's)")
    p.add_argument("--json", action="store_true", help="print a JSON object with test_ne")
    p.add_argument("--threads", type=_positive_int, default=1)
    p.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from hdbench.errors import HdbenchError

    try:
        return args.func(args)
    except HdbenchError as err:
        print(f"hdbench {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hdbench {args.command}: interrupted; rerun with --resume where supported",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
