"""The bring-your-own-model commands of ``hdbench``: ``score`` and ``export-trials``, and the
``--model`` / ``--activity`` options of ``leaderboard`` (logic in :mod:`hdbench.byo`)."""

from __future__ import annotations

import os

from hdbench.cli_common import add_runner_options, positive_int, runner_options, set_threads


def leaderboard_subjects(args, references) -> list:
    """``(model id, subject)`` for every ``--model`` and ``--activity`` of ``leaderboard``."""
    from hdbench.byo import activity_subject, model_subject

    subjects = [model_subject(text) for text in args.model or ()]
    subjects += [activity_subject(path, references or _all_references(), args.quick,
                                  args.weights_key) for path in args.activity or ()]
    return subjects


def _all_references() -> list[str]:
    import reference_circuits

    return reference_circuits.available()


def add_leaderboard_options(p) -> None:
    p.add_argument("--model", action="append", metavar="[NAME=]FILE.py:FACTORY|PLUGIN",
                   help="also score the system FACTORY() from this Python file, or the one an "
                        "installed hdbench.models plugin builds (repeatable)")
    p.add_argument("--activity", action="append", metavar="FILE.npz",
                   help="also score rates recorded on the exported trials (repeatable; see "
                        "hdbench export-trials)")
    p.add_argument("--weights-key", default="W",
                   help="array of the recurrent weights in --activity files (default W)")


def cmd_export_trials(args) -> int:
    from hdbench.byo import parse_references, protocol_for
    from hdbench.scoring.external import export_trials

    set_threads(args.threads)
    info = export_trials(args.out, parse_references(args.reference) or _all_references(),
                         protocol_for(args.quick))
    blocks = ", ".join(f"{b['reference']} rows {b['start']}:{b['stop']} ({b['task']})"
                       for b in info["blocks"])
    print(f"wrote {info['n_trials']} trials x {info['n_steps']} steps ({blocks}) -> {args.out}")
    return 0


def cmd_score(args) -> int:
    from hdbench.byo import activity_subject, model_subject, parse_references, score

    set_threads(args.threads)
    references = parse_references(args.reference) or _all_references()
    if args.model:
        model_id, subject = model_subject(args.model, args.name)
    else:
        model_id, subject = activity_subject(args.activity, references, args.quick,
                                             args.weights_key, args.name)
    out = args.out if args.out is not None else os.path.join(
        "hdbench-scores", model_id, "quick" if args.quick else "full")
    result = score(model_id, subject, references, quick=args.quick, out_dir=out,
                   **runner_options(args))
    if args.against and result.table is not None:
        from hdbench.api import load_leaderboard, rank

        result.table.attrs["quick"] = args.quick
        ranking = rank(result.table, load_leaderboard(args.against))
        print(f"rank among {len(ranking)} models of {args.against} (overall score):")
        for row in ranking.itertuples():
            marker = "  <-- " + model_id if row.submitted else ""
            print(f"  {row.rank:3d}  {row.model:28s} {row.overall:6.3f} ({row.coverage}){marker}")
    return 1 if result.failures else 0


def add_commands(sub) -> None:
    """Add ``score`` and ``export-trials`` to the subcommand parser ``sub``."""
    p = sub.add_parser("export-trials", help="write the evaluation inputs a submitted model's "
                                             "activity must be computed on (.npz)")
    p.add_argument("--out", required=True, help="output file (.npz)")
    p.add_argument("--quick", action="store_true",
                   help="the quick protocol's trials (as hdbench leaderboard --quick)")
    p.add_argument("--reference", action="append", metavar="NAME[,NAME]",
                   help="references whose trials to export (repeatable, or comma-separated; "
                        "default: all available)")
    p.add_argument("--threads", type=positive_int, default=1,
                   help="torch threads (default 1)")
    p.set_defaults(func=cmd_export_trials)

    p = sub.add_parser("score", help="score a model file or recorded activity against the "
                                     "reference circuits; write scores.csv and scores.json")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", metavar="[NAME=]FILE.py:FACTORY|PLUGIN",
                      help="the system FACTORY() built by this Python file, or by an "
                           "installed hdbench.models plugin")
    what.add_argument("--activity", metavar="FILE.npz",
                      help="rates [trials, time, units] (+ optional outputs, W) recorded on "
                           "the trials of hdbench export-trials")
    p.add_argument("--weights-key", default="W",
                   help="array of the recurrent weights in --activity (default W)")
    p.add_argument("--name", help="model id in the results (default: the file's stem)")
    p.add_argument("--reference", action="append", metavar="NAME[,NAME]",
                   help="references to score against (repeatable, or comma-separated; default: "
                        "all available)")
    p.add_argument("--quick", action="store_true",
                   help="the quick protocol (as hdbench leaderboard --quick)")
    p.add_argument("--out", help="output folder (default hdbench-scores/<name>/quick or "
                                 "/full)")
    p.add_argument("--against", metavar="LEADERBOARD.csv",
                   help="also rank the model within this published table (e.g. "
                        "results/leaderboard.csv, scored with the same protocol) without "
                        "re-scoring its models")
    add_runner_options(p, "local worker processes (default 1: in-process)")
    p.add_argument("--threads", type=positive_int, default=1,
                   help="torch threads (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_score)
