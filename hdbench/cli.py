"""The ``hdbench`` command.

Heavy libraries (torch, pandas, seaborn, scikit-learn) are imported inside the commands that
need them, so that ``hdbench --help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from hdbench import __version__
from hdbench.cli_byo import add_commands, add_leaderboard_options, leaderboard_subjects

QUICK_JOBS = 2  # worker processes of `hdbench leaderboard --quick` unless --jobs says otherwise


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
    if args.noise_location:
        options["noise_location"] = args.noise_location
    changes = {k: v for k, v in dict(
        updates=args.updates, batch_size=args.batch_size, lr=args.lr,
        lr_schedule=args.lr_schedule, input_lr_factor=args.input_lr_factor,
        weight_decay=args.weight_decay,
        rate_penalty=args.rate_penalty, noise_std=args.noise_std).items() if v is not None}
    task = args.task
    if args.teacher is not None or args.record_fraction is not None:
        from hdbench.training.recordings import cli_teacher_options

        task, teacher_changes = cli_teacher_options(
            args.teacher, args.record_fraction, args.activity_weight, args.record_seed, task)
        changes.update(teacher_changes)
    config = TrainConfig(model=args.model, model_options=options, task=task or "cueva-1x",
                         seed=args.seed, **changes)
    metrics = train(config, args.out, resume=args.resume, progress=not args.quiet)
    print(f"test NE {100 * metrics['test_ne']:.3f} % (best validation NE "
          f"{100 * metrics['best_val_ne']:.3f} % at update {metrics['best_update']}; "
          f"{metrics['train_wall_s']:.0f} s) -> {args.out}")
    return 0


def cmd_experiment(args) -> int:
    from hdbench.experiments.sparse_recordings import run_sparse_recordings

    _set_threads(args.threads)
    outcome = run_sparse_recordings(
        args.teacher, quick=args.quick, seeds=args.seeds, fractions=args.record_fractions,
        updates=args.updates, jobs=args.jobs, dask_scheduler=args.dask_scheduler,
        dry_run=args.dry_run, out_dir=args.out, store=args.cache,
        retry_failed=not args.skip_failed, progress=not args.quiet)
    return 1 if outcome.failures else 0


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


def cmd_leaderboard(args) -> int:
    from hdbench.leaderboard import run_leaderboard

    _set_threads(args.threads)
    jobs = args.jobs
    if jobs is None:  # the quick leaderboard's time budget assumes 2 cores
        jobs = min(QUICK_JOBS, os.cpu_count() or 1) if args.quick else 1
    outcome = run_leaderboard(
        references=args.reference or None, quick=args.quick, jobs=jobs,
        subjects=leaderboard_subjects(args, args.reference),
        dask_scheduler=args.dask_scheduler, dry_run=args.dry_run, out_dir=args.out,
        store=args.cache, retry_failed=not args.skip_failed, train=not args.no_train,
        progress=not args.quiet)
    return 1 if outcome.failures else 0


def cmd_analyze(args) -> int:
    from hdbench.analysis import analyze, format_summary
    from hdbench.analysis.summary import compare_cell_types_across, format_comparison

    _set_threads(args.threads)
    thresholds = {k: v for k, v in dict(kappa=args.kappa, min_r=args.min_r,
                                        inactive_rate=args.inactive_rate).items()
                  if v is not None}
    results = []
    for target in args.target:
        result = analyze(target, spec=args.task, n_trials=args.trials, seed=args.seed,
                         extras=not args.quick, thresholds=thresholds, n_draws=args.draws,
                         n_boot=args.boot, progress=not args.json)
        results.append(result)
        if not args.json:
            print(format_summary(result) + ("\n" if len(args.target) > 1 else ""), flush=True)
    comparison = compare_cell_types_across(results) if len(results) > 1 else None
    if args.json:
        out = results[0].to_dict() if comparison is None else {
            "systems": [r.to_dict() for r in results],
            "cell_type_comparison": json.loads(comparison.to_json(orient="records"))}
        print(json.dumps(out))
    elif comparison is not None:
        print(format_comparison(comparison))
    return 0


def cmd_simulate(args) -> int:
    from reference_circuits.export import simulate_to_dir

    _set_threads(args.threads)
    summary = simulate_to_dir(args.circuit, args.task, args.trials, args.out, seed=args.seed,
                              instance_seed=args.instance_seed)
    if args.json:
        print(json.dumps({k: summary[k] for k in ("circuit", "task", "trials", "rms_error_deg",
                                                   "gain")}))
    else:
        print(f"{summary['circuit']} on {summary['trials']} {summary['task']} trials: RMS decode "
              f"error {summary['rms_error_deg']:.2f}° (gain {summary['gain']:.3f}) -> {args.out}")
    return 0


def cmd_figures(args) -> int:
    from hdbench.figures import render_figures

    _set_threads(args.threads)
    report = render_figures(args.results, args.out, args.format, args.only,
                            n_trials=args.trials, model=args.model)
    print(f"{len(report.written)} figure(s) written to {args.out}, {len(report.skipped)} "
          f"skipped, {len(report.failed)} failed")
    return 1 if report.failed else 0


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
    p.add_argument("--task", choices=sorted(PRESETS), metavar="PRESET",
                   help=f"task preset, one of {', '.join(PRESETS)} (default cueva-1x; with "
                        "--teacher the teacher's own)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--updates", type=_positive_int, help="parameter updates (default 5000)")
    p.add_argument("--batch-size", type=_positive_int)
    p.add_argument("--lr", type=float)
    p.add_argument("--lr-schedule", choices=["constant", "cosine"])
    p.add_argument("--input-lr-factor", type=float,
                   help="learning-rate multiplier for the input weights")
    p.add_argument("--weight-decay", type=_nonneg_float)
    p.add_argument("--rate-penalty", type=_nonneg_float, help="initial λ_r")
    p.add_argument("--noise-std", type=_nonneg_float, help="training rate-noise SD")
    p.add_argument("--activation", help="CTRNN rate function: retanh, tanh, relu, softplus")
    p.add_argument("--units", type=_positive_int, help="recurrent units (default 100)")
    p.add_argument("--noise-location", choices=["rate", "state"],
                   help="CTRNN: training noise on the rates or in the state equation")
    p.add_argument("--teacher", metavar="CIRCUIT_OR_RUN",
                   help="train on sparse recordings of this reference circuit (fly, rodent) or "
                        "trained run directory")
    p.add_argument("--record-fraction", type=float, metavar="P",
                   help="with --teacher: fraction in (0, 1] of its neurons recorded")
    p.add_argument("--activity-weight", type=float, metavar="LAMBDA",
                   help="with --teacher: weight of the activity loss (default 1)")
    p.add_argument("--record-seed", type=int, help="seed of the recorded sample (default --seed)")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--threads", type=_positive_int, default=1, help="torch threads (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("experiment", help="run an experiment of the suite: sparse-recordings "
                                          "(students trained on sparse recordings of a teacher)")
    p.add_argument("name", choices=["sparse-recordings"], help="the experiment")
    p.add_argument("--teacher", default="fly",
                   help="reference circuit (fly, rodent) or trained run directory (default fly)")
    p.add_argument("--quick", action="store_true",
                   help="p in {0, 0.1, 1}, 2 seeds, short training, fewer evaluation trials")
    p.add_argument("--seeds", type=int, nargs="+", help="seeds (default 0 1 2)")
    p.add_argument("--record-fractions", type=float, nargs="+", metavar="P",
                   help="recorded fractions (default 0 0.02 0.05 0.1 0.2 0.5 1)")
    p.add_argument("--updates", type=_positive_int, help="training updates per student")
    p.add_argument("--jobs", type=_positive_int, default=1,
                   help="local worker processes, 1 torch thread each (default 1)")
    p.add_argument("--dask-scheduler", metavar="ADDRESS", help="run the jobs on this Dask "
                                                                "scheduler")
    p.add_argument("--dry-run", action="store_true", help="list the jobs that would run")
    p.add_argument("--out", default="results",
                   help="output folder; the table goes to OUT/experiments/ (default results)")
    p.add_argument("--cache", metavar="DIR",
                   help="run cache (default $HDBENCH_HOME or ~/.cache/hdbench)")
    p.add_argument("--skip-failed", action="store_true",
                   help="do not retry jobs whose failure is recorded in the cache")
    p.add_argument("--threads", type=_positive_int, default=1)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_experiment)

    p = sub.add_parser("evaluate", help="test NE of a trained run")
    p.add_argument("run_dir")
    p.add_argument("--trials", type=_positive_int, help="test trials (default: the run's)")
    p.add_argument("--json", action="store_true", help="print a JSON object with test_ne")
    p.add_argument("--threads", type=_positive_int, default=1)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("leaderboard", help="train and score the model zoo against the reference "
                                           "circuits; write leaderboard.{csv,md,html}")
    p.add_argument("--quick", action="store_true",
                   help="the quick zoo (short training) and fewer evaluation trials")
    p.add_argument("--jobs", type=_positive_int, default=None,
                   help="local worker processes, 1 torch thread each (default 1: in-process; "
                        f"with --quick, {QUICK_JOBS} or the number of cores if fewer)")
    p.add_argument("--dask-scheduler", metavar="ADDRESS",
                   help="run the jobs on this Dask scheduler (e.g. tcp://127.0.0.1:8786)")
    p.add_argument("--dry-run", action="store_true", help="list the jobs that would run")
    p.add_argument("--out", default="results", help="output folder (default results)")
    p.add_argument("--reference", action="append", metavar="NAME[=MODULE:FACTORY]",
                   help="score against this reference (repeatable; default: all available)")
    p.add_argument("--cache", metavar="DIR",
                   help="run cache (default $HDBENCH_HOME or ~/.cache/hdbench)")
    p.add_argument("--skip-failed", action="store_true",
                   help="do not retry jobs whose failure is recorded in the cache")
    p.add_argument("--no-train", action="store_true",
                   help="score only zoo models that have a checkpoint (cache or <out>/zoo); "
                        "list the others instead of training them")
    p.add_argument("--threads", type=_positive_int, default=1,
                   help="torch threads of in-process jobs (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_leaderboard_options(p)
    p.set_defaults(func=cmd_leaderboard)
    add_commands(sub, _positive_int)  # score, export-trials

    p = sub.add_parser("analyze", help="tuning, cell types, connectivity and dynamics of a "
                                       "trained run or a reference circuit")
    p.add_argument("target", metavar="DIR_OR_CIRCUIT", nargs="+",
                   help="run directories (with model.pt) or reference circuit names; with "
                        "several, their cell-type fractions are compared at the end")
    p.add_argument("--task", choices=sorted(PRESETS), metavar="PRESET",
                   help="task statistics (default: the run's task or the circuit's preset)")
    p.add_argument("--trials", type=_positive_int, default=1000,
                   help="noise-free trials for tuning (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kappa", type=_nonneg_float, help="|AV asymmetry| of a shifter (0.03)")
    p.add_argument("--min-r", type=_nonneg_float, help="resultant length of HD tuning (0.3)")
    p.add_argument("--inactive-rate", type=_nonneg_float, help="max rate of inactive units")
    p.add_argument("--draws", type=_positive_int, default=20,
                   help="random control draws per silenced group size (default 20)")
    p.add_argument("--boot", type=_positive_int, default=1000,
                   help="bootstrap resamples of the 90 %% intervals (default 1000)")
    p.add_argument("--quick", action="store_true",
                   help="skip drift/diffusion, noise robustness and generalisation")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--threads", type=_positive_int, default=1)
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("simulate", help="simulate a reference circuit on test trials and write "
                                        "rates, heading, decoded heading and cell types")
    p.add_argument("--circuit", required=True, help="reference circuit: rodent or fly")
    p.add_argument("--task", choices=sorted(PRESETS), metavar="PRESET",
                   help="task preset (default: the circuit's own, rodent or fly)")
    p.add_argument("--trials", type=_positive_int, default=100, help="test trials (default 100)")
    p.add_argument("--seed", type=int, default=0, help="seed of the trials and circuit noise")
    p.add_argument("--instance-seed", type=int, default=0, help="which circuit instance")
    p.add_argument("--out", required=True, help="output folder (simulation.npz, summary.json)")
    p.add_argument("--json", action="store_true", help="print rms_error_deg and gain as JSON")
    p.add_argument("--threads", type=_positive_int, default=1)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("figures", help="render the paper figures from stored results "
                                       "(skips a figure whose data is missing)")
    p.add_argument("--results", default="results",
                   help="results folder with zoo/, leaderboard.csv, experiments/ "
                        "(default results)")
    p.add_argument("--out", default="results/figures", help="output folder "
                                                            "(default results/figures)")
    p.add_argument("--format", default="png", metavar="FORMATS",
                   help="comma-separated formats: png, pdf, svg (default png)")
    p.add_argument("--only", metavar="NAMES",
                   help="comma-separated figure names or numbers, e.g. task,7 (default all)")
    p.add_argument("--trials", type=_positive_int, default=200,
                   help="test trials simulated per system (default 200)")
    p.add_argument("--model", metavar="ID",
                   help="zoo model shown beside the references (default ctrnn, its lowest seed)")
    p.add_argument("--threads", type=_positive_int, default=1)
    p.set_defaults(func=cmd_figures)
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
