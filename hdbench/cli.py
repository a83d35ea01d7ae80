"""The ``hdbench`` command.

Heavy libraries (torch, pandas, seaborn, scikit-learn) are imported inside the commands that
need them, so that ``hdbench --help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from hdbench._version import __version__
from hdbench.cli_byo import add_commands, add_leaderboard_options, leaderboard_subjects
from hdbench.cli_common import (
    Parser,
    add_runner_options,
    nonneg_float,
    positive_int,
    runner_options,
    set_threads,
)

QUICK_JOBS = 2  # worker processes of `hdbench leaderboard --quick` unless --jobs says otherwise


def cmd_train(args) -> int:
    from hdbench.training import TrainConfig, train
    from hdbench.training.trainer import diverged_note

    set_threads(args.threads)
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
    note = diverged_note(metrics)
    if note:
        print(f"hdbench train: {note}", file=sys.stderr)
        return 1
    return 0


def cmd_experiment(args) -> int:
    from hdbench.errors import HdbenchError

    set_threads(args.threads)
    own = {"sparse-recordings": ("zoo", "factorial_only", "no_train"),
           "cueva-reproduction": ("record_fractions", "updates")}
    given = [f"--{k.replace('_', '-')}" for k in own[args.name] if getattr(args, k)]
    if given:
        raise HdbenchError(f"{', '.join(given)}: not an option of {args.name}")
    if args.name == "cueva-reproduction":
        from hdbench.experiments.cueva_reproduction import run_cueva_reproduction

        outcome = run_cueva_reproduction(quick=args.quick, seeds=args.seeds,
                                         speeds=not args.factorial_only,
                                         train=not args.no_train, out_dir=args.out,
                                         zoo_dir=args.zoo, **runner_options(args))
        return 1 if outcome.failures else 0
    from hdbench.experiments.sparse_recordings import run_sparse_recordings

    outcome = run_sparse_recordings(
        args.teacher, quick=args.quick, seeds=args.seeds, fractions=args.record_fractions,
        updates=args.updates, out_dir=args.out, **runner_options(args))
    return 1 if outcome.failures else 0


def cmd_evaluate(args) -> int:
    from hdbench.training import evaluate

    set_threads(args.threads)
    result = evaluate(args.run_dir, n_trials=args.trials)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"test NE {100 * result['test_ne']:.3f} % on {result['test_trials']} "
              f"noise-free {result['task']} trials")
    return 0


def cmd_leaderboard(args) -> int:
    from hdbench.atomic import check_out_dir
    from hdbench.leaderboard import run_leaderboard

    set_threads(args.threads)
    jobs = args.jobs
    if jobs is None:  # the quick leaderboard's time budget assumes 2 cores
        jobs = min(QUICK_JOBS, os.cpu_count() or 1) if args.quick else 1
    check_out_dir(args.out)
    from hdbench.byo import parse_references

    references = parse_references(args.reference)
    outcome = run_leaderboard(
        references=references, quick=args.quick,
        subjects=leaderboard_subjects(args, references), out_dir=args.out,
        validity_file=args.validity, train=not args.no_train,
        **runner_options(args, jobs=jobs))
    return 1 if outcome.failures else 0


def cmd_analyze(args) -> int:
    from hdbench.analysis import analyze, format_summary
    from hdbench.analysis.summary import compare_cell_types_across, format_comparison

    set_threads(args.threads)
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

    set_threads(args.threads)
    summary = simulate_to_dir(args.circuit, args.task, args.trials, args.out, seed=args.seed,
                              instance_seed=args.instance_seed)
    if args.json:
        print(json.dumps({k: summary[k] for k in ("circuit", "task", "trials", "rms_error_deg",
                                                   "gain")}))
    else:
        print(f"{summary['circuit']} on {summary['trials']} {summary['task']} trials: RMS decode "
              f"error {summary['rms_error_deg']:.2f}° (gain {summary['gain']:.3f}) -> {args.out}")
    return 0


def cmd_validate(args) -> int:
    from hdbench.byo import parse_references
    from hdbench.scoring.battery import run_battery
    from hdbench.scoring.runner import Runner

    set_threads(args.threads)
    jobs = args.jobs or (min(QUICK_JOBS, os.cpu_count() or 1) if args.quick else 1)
    runner = Runner(**runner_options(args, jobs=jobs))
    run_battery(references=parse_references(args.reference), quick=args.quick,
                out_dir=args.out, runner=runner)
    return 1 if runner.report.failures else 0


def cmd_benchmarks(args) -> int:
    from hdbench.errors import HdbenchError
    from hdbench.scoring import all_benchmarks, get

    if args.id:
        bench = get(args.id)
        info = bench.describe()
        width = max(len(k) for k in info)
        for key, value in info.items():
            print(f"{key.ljust(width)}  {value}")
        return 0
    references = [args.reference] if args.reference else None
    if args.reference:
        import reference_circuits

        if args.reference not in reference_circuits.available():
            raise HdbenchError(f"unknown reference circuit {args.reference!r}; known: "
                               f"{', '.join(reference_circuits.available())}")
    found = all_benchmarks(references, args.family)
    width = max((len(b.id) for b in found), default=10)
    for bench in found:
        direction = "higher" if bench.higher_is_better else "lower"
        print(f"{bench.id.ljust(width)}  v{bench.version}  {direction:6s}  "
              f"{bench.comparison}")
    print(f"{len(found)} benchmarks; `hdbench benchmarks ID` describes one")
    return 0


def cmd_figures(args) -> int:
    from hdbench.figures import render_figures

    set_threads(args.threads)
    report = render_figures(args.results, args.out, args.format, args.only,
                            n_trials=args.trials, model=args.model)
    print(f"{len(report.written)} figure(s) written to {args.out}, {len(report.skipped)} "
          f"skipped, {len(report.failed)} failed")
    return 1 if report.failed else 0


def cmd_properties(args) -> int:
    import re
    from pathlib import Path

    import pandas as pd

    import reference_circuits
    from hdbench.atomic import atomic_write_text
    from hdbench.errors import HdbenchError
    from hdbench.runs import load_model
    from hdbench.scoring.bundle import EvalProtocol
    from hdbench.scoring.property_benchmarks import TABLE_COLUMNS, markdown_summary, property_rows
    from hdbench.training import TrainConfig
    from hdbench.training.trainer import build_model

    set_threads(args.threads)
    protocol = EvalProtocol(n_trials=args.trials, seed=args.seed)
    systems = [(f"{ref} instance {k}", f"{ref} reference", k,
                lambda ref=ref, k=k: reference_circuits.load(ref, k))
               for ref in ("rodent", "fly") for k in args.instances]
    zoo = Path(args.results) / "zoo"
    for model in args.models:
        runs = sorted((int(m["seed"]), path) for path in zoo.glob(f"{model}-seed*")
                      if (m := re.fullmatch(re.escape(model) + r"-seed(?P<seed>\d+)",
                                            path.name)) and (path / "model.pt").is_file())
        if not runs:
            raise HdbenchError(f"no finished run of model {model!r} in {zoo}")
        systems += [(path.name, model, seed, lambda path=path: load_model(path))
                    for seed, path in runs]
    systems += [(f"untrained ctrnn seed {k}", "ctrnn untrained", k,
                 lambda k=k: build_model(TrainConfig(model="ctrnn", seed=k)).eval())
                for k in args.untrained_seeds]
    rows = []
    for name, group, seed, make in systems:
        system = make()
        for reference in ("rodent", "fly"):
            rows += property_rows(system, reference, name=name, group=group, seed=seed,
                                  protocol=protocol)
        if not args.quiet:
            print(f"measured {name}", file=sys.stderr, flush=True)
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "properties.csv", table.to_csv(index=False, float_format="%.6g"))
    summary = markdown_summary(table)
    atomic_write_text(out / "properties.md", summary)
    print(summary)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from hdbench.task import PRESETS

    parser = Parser(
        prog="hdbench",
        description="Benchmark models of the head-direction system against reference circuits.",
    )
    parser.add_argument("--version", action="version", version=f"hdbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    p = sub.add_parser("train", help="train a model on the AV integration task")
    p.add_argument("--model", default="ctrnn",
                   help="model name: ctrnn, gru, lstm, vanilla (default ctrnn)")
    p.add_argument("--task", choices=sorted(PRESETS), metavar="PRESET",
                   help=f"task preset, one of {', '.join(PRESETS)} (default cueva-1x; with "
                        "--teacher the teacher's own)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the initialisation, training trials and noise (default 0)")
    p.add_argument("--updates", type=positive_int, help="parameter updates (default 5000)")
    p.add_argument("--batch-size", type=positive_int,
                   help="fresh trials per update (default 100)")
    p.add_argument("--lr", type=float, help="AdamW learning rate (default 1e-3)")
    p.add_argument("--lr-schedule", choices=["constant", "cosine"],
                   help="learning-rate schedule (default cosine, to 1%% of --lr)")
    p.add_argument("--input-lr-factor", type=float,
                   help="learning-rate multiplier for the input weights (default 10)")
    p.add_argument("--weight-decay", type=nonneg_float,
                   help="AdamW decoupled weight decay (default 0.01)")
    p.add_argument("--rate-penalty", type=nonneg_float,
                   help="initial λ_r of the rate penalty (default 0.01)")
    p.add_argument("--noise-std", type=nonneg_float, help="SD of the training noise (default 0.1)")
    p.add_argument("--activation",
                   help="CTRNN rate function: retanh (default), tanh, relu, softplus")
    p.add_argument("--units", type=positive_int, help="recurrent units (default 100)")
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
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("experiment", help="run an experiment of the suite: sparse-recordings "
                                          "(students trained on sparse recordings of a teacher),"
                                          " cueva-reproduction (which training recipe "
                                          "reproduces which Cueva et al. claim)")
    p.add_argument("name", choices=["sparse-recordings", "cueva-reproduction"],
                   help="the experiment")
    p.add_argument("--teacher", default="fly",
                   help="sparse-recordings: reference circuit (fly, rodent) or trained run "
                        "directory (default fly)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: sparse-recordings p in {0, 0.1, 1}, 2 seeds; "
                        "cueva-reproduction 1 seed, tens of updates; short training, fewer "
                        "evaluation trials")
    p.add_argument("--seeds", type=int, nargs="+", help="seeds (default 0 1 2)")
    p.add_argument("--zoo", metavar="DIR",
                   help="cueva-reproduction: committed zoo runs reused where a cell's config "
                        "equals theirs (default OUT/zoo)")
    p.add_argument("--factorial-only", action="store_true",
                   help="cueva-reproduction: train and measure the factorial only, not the "
                        "speed presets")
    p.add_argument("--no-train", action="store_true",
                   help="cueva-reproduction: train nothing; write the table from what the cache "
                        "holds (unfinished cells keep their last trained rung, marked "
                        "ladder_complete 0)")
    p.add_argument("--record-fractions", type=float, nargs="+", metavar="P",
                   help="sparse-recordings: recorded fractions (default 0 0.02 0.05 0.1 0.2 0.5 "
                        "1)")
    p.add_argument("--updates", type=positive_int,
                   help="sparse-recordings: training updates per student (default: the "
                        "experiment's schedule)")
    add_runner_options(p, "local worker processes, 1 torch thread each (default 1)")
    p.add_argument("--out", default="results",
                   help="output folder; the table goes to OUT/experiments/ (default results)")
    p.add_argument("--threads", type=positive_int, default=1,
                   help="torch threads (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_experiment)

    p = sub.add_parser("evaluate", help="test NE of a trained run")
    p.add_argument("run_dir", help="a finished training run directory (or zoo run folder)")
    p.add_argument("--trials", type=positive_int, help="test trials (default: the run's)")
    p.add_argument("--json", action="store_true", help="print a JSON object with test_ne")
    p.add_argument("--threads", type=positive_int, default=1,
                   help="torch threads (default 1)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("leaderboard", help="train and score the model zoo against the reference "
                                           "circuits; write leaderboard.{csv,md,html}")
    p.add_argument("--quick", action="store_true",
                   help="the quick zoo (short training) and fewer evaluation trials")
    add_runner_options(p, "local worker processes, 1 torch thread each (default 1: in-process; "
                          f"with --quick, {QUICK_JOBS} or the number of cores if fewer)",
                       jobs_default=None)
    p.add_argument("--out", default="results", help="output folder (default results)")
    p.add_argument("--reference", action="append", metavar="NAME[=MODULE:FACTORY]",
                   help="score against this reference (repeatable, or comma-separated; "
                        "default: all available)")
    p.add_argument("--no-train", action="store_true",
                   help="score only zoo models that have a checkpoint (cache or <out>/zoo); "
                        "list the others instead of training them")
    p.add_argument("--validity", metavar="FILE",
                   help="benchmark_validity.csv whose validated benchmarks count in "
                        "brain-likeness (default <out>/validity/benchmark_validity.csv; all "
                        "benchmarks count when there is none)")
    p.add_argument("--threads", type=positive_int, default=1,
                   help="torch threads of in-process jobs (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_leaderboard_options(p)
    p.set_defaults(func=cmd_leaderboard)
    add_commands(sub)  # score, export-trials

    p = sub.add_parser("analyze", help="tuning, cell types, connectivity and dynamics of a "
                                       "trained run or a reference circuit")
    p.add_argument("target", metavar="SYSTEM", nargs="+",
                   help="run directories, zoo run ids (results/zoo), reference circuit names "
                        "or FILE.py:FACTORY (then give --task); with several, their cell-type "
                        "fractions are compared at the end")
    p.add_argument("--task", choices=sorted(PRESETS), metavar="PRESET",
                   help="task statistics (default: the run's task or the circuit's preset)")
    p.add_argument("--trials", type=positive_int, default=1000,
                   help="noise-free trials for tuning (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the trials (default 0)")
    p.add_argument("--kappa", type=nonneg_float, help="|AV asymmetry| of a shifter (0.03)")
    p.add_argument("--min-r", type=nonneg_float, help="resultant length of HD tuning (0.3)")
    p.add_argument("--inactive-rate", type=nonneg_float, help="max rate of inactive units")
    p.add_argument("--draws", type=positive_int, default=20,
                   help="random control draws per silenced group size (default 20)")
    p.add_argument("--boot", type=positive_int, default=1000,
                   help="bootstrap resamples of the 90 %% intervals (default 1000)")
    p.add_argument("--quick", action="store_true",
                   help="skip drift/diffusion, noise robustness and generalisation")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--threads", type=positive_int, default=1,
                   help="torch threads (default 1)")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("simulate", help="simulate a reference circuit on test trials and write "
                                        "rates, heading, decoded heading and cell types")
    p.add_argument("--circuit", required=True, help="reference circuit: rodent or fly")
    p.add_argument("--task", choices=sorted(PRESETS), metavar="PRESET",
                   help="task preset (default: the circuit's own, rodent or fly)")
    p.add_argument("--trials", type=positive_int, default=100, help="test trials (default 100)")
    p.add_argument("--seed", type=int, default=0, help="seed of the trials and circuit noise")
    p.add_argument("--instance-seed", type=int, default=0, help="which circuit instance")
    p.add_argument("--out", required=True, help="output folder (simulation.npz, summary.json)")
    p.add_argument("--json", action="store_true", help="print rms_error_deg and gain as JSON")
    p.add_argument("--threads", type=positive_int, default=1,
                   help="torch threads (default 1)")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("validate", help="run the validity battery on every benchmark (the zoo, "
                                        "degraded references, other circuits); write "
                                        "OUT/validity/benchmark_validity.{csv,json,md}")
    p.add_argument("--quick", action="store_true",
                   help="the quick zoo and protocol, one instance per reference (a smoke run)")
    add_runner_options(p, "local worker processes, 1 torch thread each (default 1; with "
                          f"--quick, {QUICK_JOBS})", jobs_default=None)
    p.add_argument("--out", default="results",
                   help="results folder holding zoo/; the tables go to OUT/validity/ "
                        "(default results)")
    p.add_argument("--reference", action="append", metavar="NAME",
                   help="only these references (repeatable, or comma-separated; default all)")
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("benchmarks", help="list the registered benchmarks, or describe one")
    p.add_argument("id", nargs="?", help="a benchmark id to describe (e.g. fly.task.test-ne)")
    p.add_argument("--reference", help="only this reference circuit's (default: all)")
    p.add_argument("--family", help="only this family: task, tuning, representation, "
                                    "connectivity, dynamics, ... (default: all)")
    p.set_defaults(func=cmd_benchmarks)

    p = sub.add_parser("properties", help="measure the published-property benchmarks' "
                                          "quantities on the references, zoo models and "
                                          "untrained networks; write a table")
    p.add_argument("--models", nargs="*", default=["ctrnn"], metavar="ID",
                   help="zoo models (every seed in <results>/zoo; default ctrnn)")
    p.add_argument("--instances", nargs="*", type=int, default=[0, 1, 2],
                   help="reference circuit instances (default 0 1 2)")
    p.add_argument("--untrained-seeds", nargs="*", type=int, default=[0, 1, 2],
                   help="seeds of untrained default CTRNNs (default 0 1 2)")
    p.add_argument("--results", default="results", help="folder with zoo/ (default results)")
    p.add_argument("--out", default="results/properties",
                   help="output folder for properties.csv and properties.md "
                        "(default results/properties)")
    p.add_argument("--trials", type=positive_int, default=256,
                   help="evaluation trials per system (default 256, the scoring protocol)")
    p.add_argument("--seed", type=int, default=0, help="evaluation protocol seed (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    p.set_defaults(func=cmd_properties)

    p = sub.add_parser("figures", help="render the paper figures from stored results "
                                       "(skips a figure whose data is missing)")
    p.add_argument("--results", default="results",
                   help="results folder with zoo/, leaderboard.csv, experiments/, "
                        "properties/, validity/ (default results)")
    p.add_argument("--out", default="results/figures", help="output folder "
                                                            "(default results/figures)")
    p.add_argument("--format", default="png", metavar="FORMATS",
                   help="comma-separated formats: png, pdf, svg (default png)")
    p.add_argument("--only", metavar="NAMES",
                   help="comma-separated figure names or numbers, e.g. task,7 (default all)")
    p.add_argument("--trials", type=positive_int, default=200,
                   help="test trials simulated per system (default 200)")
    p.add_argument("--model", metavar="ID",
                   help="zoo model shown beside the references (default ctrnn, its lowest seed)")
    p.add_argument("--threads", type=positive_int, default=1,
                   help="torch threads (default 1)")
    p.set_defaults(func=cmd_figures)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from hdbench.errors import HdbenchError
    from hdbench.training.trainer import TrainingDiverged

    try:
        return args.func(args)
    except TrainingDiverged as err:  # a failed run, not a bad input
        print(f"hdbench {args.command}: {err}", file=sys.stderr)
        return 1
    except HdbenchError as err:
        print(f"hdbench {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hdbench {args.command}: interrupted; rerun with --resume where supported",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
