"""The leaderboard of models vs biology: aggregate the score table and render it.

:func:`run_leaderboard` scores the zoo through the runner (:func:`hdbench.scoring.board.
score_board`), then :func:`summarise` aggregates the tidy per-seed rows per family and overall
and :func:`write_leaderboard` writes

- ``leaderboard.csv``: the per-seed rows (:data:`COLUMNS`), a plain CSV (``pd.read_csv``);
- ``leaderboard-summary.csv``: one row per (model, reference, family) aggregate;
- ``leaderboard.json``: provenance and the benchmark glossary;
- ``leaderboard.md`` and ``leaderboard.html`` (from the template ``templates/leaderboard.html``).

Normalisation and aggregation follow :mod:`hdbench.scoring.score`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from hdbench._version import __version__
from hdbench.atomic import atomic_write_text, check_out_dir
from hdbench.errors import HdbenchError
from hdbench.leaderboard_render import (
    NORMALISATION_NOTE,
    format_summary_table,
    glossary,
    render_html,
    render_markdown,
)
from hdbench.scoring import QUICK_PROTOCOL, EvalProtocol, aggregate
from hdbench.scoring.board import COLUMNS, score_board
from hdbench.scoring.runner import Report, Runner
from hdbench.scoring.validity import read_status
from hdbench.store import dumps, git_state
from hdbench.versions import COMPONENTS

SUMMARY_COLUMNS = ("model", "reference", "family", "normalised", "error", "n", "n_total",
                   "coverage", "n_seeds")
FILES = ("csv", "summary", "json", "md", "html")


@dataclass
class LeaderboardRun:
    """What :func:`run_leaderboard` did."""

    table: object = None  # pandas.DataFrame of per-seed rows (COLUMNS)
    summary: object = None  # pandas.DataFrame of aggregates (SUMMARY_COLUMNS)
    paths: dict = field(default_factory=dict)
    report: Report = field(default_factory=Report)

    @property
    def failures(self) -> list:
        return self.report.failures


def run_leaderboard(zoo: Iterable | None = None, references=None, benchmarks=None, *,
                    subjects: Iterable[tuple[str, object]] = (), write: bool = True,
                    quick: bool = False, train: bool = True, out_dir="results",
                    validity_file=None, runner: Runner | None = None,
                    log: Callable[[str], None] = print, **runner_options) -> LeaderboardRun:
    """Train and score the zoo against the references and write the leaderboard.

    Parameters
    ----------
    zoo : iterable of ZooEntry, optional
        Default :data:`hdbench.zoo.QUICK_ZOO` when ``quick`` else :data:`hdbench.zoo.ZOO`.
    references, benchmarks : optional
        Reference names (or ``name=module:factory``) and benchmark ids; default all.
    subjects : iterable of (model id, subject)
        Ready-made subjects (a user's model or activity) scored as rows of their own.
    write : bool
        Write the files of :data:`FILES` and export trained runs to ``<out_dir>/zoo``.
    quick : bool
        Quick zoo and :data:`~hdbench.scoring.QUICK_PROTOCOL` (fewer evaluation trials).
    train : bool
        Train zoo runs that are missing (default); False leaves them out, logged.
    out_dir : path
        Where the files and ``zoo/`` go; checked before anything is computed.
    validity_file : path, optional
        The validity battery's ``benchmark_validity.csv`` whose status decides which
        benchmarks count in brain-likeness (default ``<out_dir>/validity/``; every benchmark
        counts when it does not exist). Validity is a property of a benchmark shown on the full
        zoo, so the quick leaderboard is best given the full battery's file.
    runner : Runner, optional
        Or ``runner_options`` for a new one (``store``, ``jobs``, ``dask_scheduler``,
        ``force``, ``retry_failed``, ``dry_run``, ``progress``).
    """
    from hdbench.zoo import get_zoo

    out_dir = check_out_dir(out_dir)
    if validity_file is None:
        validity_file = out_dir / "validity" / "benchmark_validity.csv"
    elif not Path(validity_file).is_file():
        raise HdbenchError(f"validity file {validity_file}: no such file (hdbench validate "
                           "writes it)")
    validity_file = Path(validity_file)
    runner = runner or Runner(log=log, **runner_options)
    zoo = tuple(zoo) if zoo is not None else get_zoo(quick)
    protocol = QUICK_PROTOCOL if quick else EvalProtocol()
    board = score_board(zoo, subjects, references, benchmarks, runner=runner, protocol=protocol,
                        train=train, zoo_dir=out_dir / "zoo", export=write)
    outcome = LeaderboardRun(report=runner.report)
    if runner.dry_run:
        runner.finish()
        return outcome
    if board.not_trained:
        log(f"left out {len(board.not_trained)} zoo runs without a checkpoint made by today's "
            f"code: {', '.join(board.not_trained)}")
    outcome.table = board.table
    validity = read_status(validity_file) or None
    outcome.summary = summarise(board.table, board.benches, validity)
    if write:
        for run in board.runs:
            path = getattr(run.subject, "path", None)
            if path is not None and run.config is not None:
                runner.export_run(Path(path), run.config, out_dir / "zoo" / run.label)
        header = leaderboard_provenance(protocol, quick, board.references,
                                        [r.entry.model_id for r in board.runs], board.benches)
        if board.not_trained:
            header["not_trained"] = ", ".join(board.not_trained)
        header["validity"] = ("battery not run: every benchmark counted" if validity is None
                              else f"{sum(s[1] for s in validity.values())} benchmarks "
                                   f"validated ({_shown(validity_file, out_dir)})")
        outcome.paths = write_leaderboard(outcome.table, out_dir, header, board.benches,
                                          summary=outcome.summary, validity=validity)
        log(f"{len(outcome.table)} score rows; wrote "
            f"{', '.join(str(p) for p in outcome.paths.values())}")
        log(format_summary_table(outcome.summary))
    runner.finish()
    return outcome


def _shown(path: Path, out_dir: Path) -> str:
    """``path`` relative to ``out_dir`` when inside it (as the tables are published)."""
    try:
        return path.resolve().relative_to(out_dir.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


# -- aggregates ------------------------------------------------------------------------------------

TASK_FAMILY = "task"


def counted(leaves, validity: dict | None):
    """The leaves (rows of reference, family, benchmark, version) that count in the neural
    aggregates: every one when no validity status is known; else those the validity battery
    validated at their current version (the others are experimental)."""
    if validity is None:
        return leaves
    keep = [bool(b in validity and validity[b][1] and validity[b][0] == int(v))
            for b, v in zip(leaves["benchmark"], leaves["version"], strict=True)]
    return leaves.loc[leaves.index[keep]]  # (an empty list would select columns)


def summarise(table, benches: dict | None = None, validity: dict | None = None):
    """Aggregates per (model, reference, family): unweighted means of normalised leaf scores
    with coverage (see :mod:`hdbench.scoring.score`).

    - every family of every reference, ``family="task"`` included (task competence);
    - ``family="overall"`` per reference and ``reference="all"``: **brain-likeness**, the mean
      over the neural families' leaves (every family but ``task``), validated ones only when
      ``validity`` (:func:`hdbench.scoring.validity.read_status`) is given: an experimental
      benchmark leaves the overall and its family's score;
    - ``("all", "task")``: task competence over every reference.

    A model's leaf score is the mean over its seeds of the normalised values; its error is the
    SEM over seeds (2+ seeds) or the benchmark's own error (1 seed). ``benches`` gives the
    number of leaves that exist; without it, the benchmarks present in ``table`` count.
    """
    import pandas as pd

    if benches is None:
        leaves = table[["reference", "family", "benchmark", "version"]].drop_duplicates(
            ["reference", "benchmark"])
    else:
        leaves = pd.DataFrame([(ref, b.family, b.id, b.version) for ref, bs in benches.items()
                               for b in bs],
                              columns=["reference", "family", "benchmark", "version"])
    task = leaves[leaves["family"] == TASK_FAMILY]
    neural = counted(leaves[leaves["family"] != TASK_FAMILY], validity)
    groups = []
    for ref in sorted(set(leaves["reference"])):
        groups += [(ref, fam, chosen) for fam, chosen in neural[neural["reference"] == ref]
                   .groupby("family")]
        groups += [(ref, TASK_FAMILY, task[task["reference"] == ref]),
                   (ref, "overall", neural[neural["reference"] == ref])]
    groups += [("all", "overall", neural), ("all", TASK_FAMILY, task)]
    rows = []
    for model, model_rows in table.groupby("model", sort=False):
        n_seeds = int(model_rows["seed"].nunique())
        per_leaf = _leaf_scores(model_rows)
        for reference, family, chosen in groups:
            if chosen.empty:
                continue
            ids = chosen["benchmark"].tolist()
            agg = aggregate([per_leaf.get(i, (math.nan, math.nan))[0] for i in ids],
                            [per_leaf.get(i, (math.nan, math.nan))[1] for i in ids],
                            n_total=len(ids))
            rows.append({"model": model, "reference": reference, "family": family,
                         "normalised": agg.mean, "error": agg.error, "n": agg.n,
                         "n_total": agg.n_total, "coverage": agg.coverage, "n_seeds": n_seeds})
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def _leaf_scores(model_rows) -> dict[str, tuple[float, float]]:
    """``{benchmark: (mean over seeds of normalised, error)}`` for one model's rows."""
    import numpy as np

    leaves = {}
    for bench_id, bench_rows in model_rows.groupby("benchmark"):
        values = bench_rows["normalised"].to_numpy(dtype=float)
        finite = np.isfinite(values)
        if not finite.any():
            continue
        if finite.sum() >= 2:
            error = float(values[finite].std(ddof=1) / math.sqrt(finite.sum()))
        else:
            error = float(bench_rows["error"].to_numpy(dtype=float)[finite][0])
        leaves[bench_id] = (float(values[finite].mean()), error)
    return leaves


# -- rendering ----------------------------------------------------------------------------------

def leaderboard_provenance(protocol: EvalProtocol, quick: bool, references, models,
                           benches) -> dict:
    """Who made the table, from what: written to ``leaderboard.json`` and the Markdown."""
    git = git_state()
    return {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "hdbench_version": __version__,
        "git_commit": (git["commit"] + (" (dirty)" if git["dirty"] else "")) if git else "unknown",
        "code_components": ", ".join(f"{k} v{v}" for k, v in COMPONENTS.items()),
        "quick": quick,
        "evaluation_trials": protocol.n_trials,
        "evaluation_seed": protocol.seed,
        "references": ", ".join(r.name for r in references),
        "models": ", ".join(dict.fromkeys(models)),
        "benchmarks": sum(len(v) for v in benches.values()),
    }


def write_leaderboard(table, out_dir, header: dict, benches=None, summary=None,
                      validity: dict | None = None) -> dict:
    """Write the files of :data:`FILES` into ``out_dir`` (atomically); return their paths."""
    out_dir = check_out_dir(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise HdbenchError(f"cannot create output folder {out_dir}: {err.strerror}") from None
    summary = summarise(table, benches, validity) if summary is None else summary
    paths = {"csv": out_dir / "leaderboard.csv", "summary": out_dir / "leaderboard-summary.csv",
             "json": out_dir / "leaderboard.json", "md": out_dir / "leaderboard.md",
             "html": out_dir / "leaderboard.html"}
    atomic_write_text(paths["csv"], table.to_csv(index=False, float_format="%.6g",
                                                 lineterminator="\n"))
    atomic_write_text(paths["summary"], summary.to_csv(index=False, float_format="%.6g",
                                                       lineterminator="\n"))
    atomic_write_text(paths["json"], dumps({"provenance": header, "columns": list(COLUMNS),
                                            "summary_columns": list(SUMMARY_COLUMNS),
                                            "normalisation": NORMALISATION_NOTE,
                                            "benchmarks": glossary(benches, validity)}))
    atomic_write_text(paths["md"], render_markdown(table, summary, header, benches, validity))
    atomic_write_text(paths["html"], render_html(table, summary, header, benches, validity))
    return paths


def read_table(path):
    """The per-seed table back from a ``leaderboard.csv``, checked: every row must have a
    model id, a known benchmark column layout and numeric values (else one clear error)."""
    import pandas as pd

    path = Path(path)
    try:
        table = pd.read_csv(path, comment="#")
    except FileNotFoundError:
        raise HdbenchError(f"{path} not found") from None
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise HdbenchError(f"{path} is not a readable CSV: {str(err).splitlines()[0]}") from None
    missing = [c for c in COLUMNS if c not in table.columns and c not in ("ceiling_sd",
                                                                          "floor_sd")]
    if missing:
        raise HdbenchError(f"{path} is not a leaderboard table: missing columns "
                           f"{', '.join(missing)}")
    for column in ("seed", "version", "raw", "ceiling", "floor", "normalised", "error"):
        numeric = pd.to_numeric(table[column], errors="coerce")
        bad = numeric.isna() & table[column].notna()
        if bad.any():
            line = int(bad.idxmax()) + 2
            raise HdbenchError(f"{path} line {line}: {column} {table[column][bad.idxmax()]!r} "
                               "is not a number; the table is damaged")
        table[column] = numeric
    if table["model"].isna().any() or table["benchmark"].isna().any():
        line = int((table["model"].isna() | table["benchmark"].isna()).idxmax()) + 2
        raise HdbenchError(f"{path} line {line}: no model or benchmark; the table is damaged")
    known = table["benchmark"].astype(str).str.count(r"\.") == 2
    if not known.all():
        line = int((~known).idxmax()) + 2
        raise HdbenchError(f"{path} line {line}: {table['benchmark'][~known].iloc[0]!r} is not "
                           "a benchmark id; the table is damaged")
    return table
