"""The Python front door: score a system held in memory, load the published leaderboard, and
rank a submission within it without re-scoring the zoo::

    import hdbench

    table = hdbench.score(my_system, quick=True)   # one row per benchmark (raw, normalised, ...)
    hdbench.summarise(table)                        # family and overall scores
    hdbench.rank(hdbench.score(my_system), hdbench.load_leaderboard())

A system is any object with the system interface (:class:`hdbench.system.System`): ``simulate``
returning rates and (sin, cos) outputs, optionally ``recurrent_weights()`` and a ``silence=``
argument. Scores are cached like the leaderboard's, keyed by the system's behaviour.
"""

from __future__ import annotations

import math
from pathlib import Path

from hdbench.errors import HdbenchError

PUBLISHED = Path(__file__).resolve().parent.parent / "results" / "leaderboard.csv"


def score(system, references=None, *, quick: bool = False, benchmarks=None,
          name: str = "my-model", **runner_options):
    """Score ``system`` against ``references`` (default: every available circuit).

    Parameters
    ----------
    system : object with the system interface
    references : list of str, optional
        Reference circuits (``"fly"``, ``"rodent"``, or ``"name=module:factory"``).
    quick : bool
        The quick protocol (32 trials per reference; not comparable with the published
        table, which uses the full protocol).
    benchmarks : list of str, optional
        Benchmark ids (``hdbench.benchmarks()`` lists them); default all.
    name : str
        The model id in the table.
    **runner_options
        Of :class:`hdbench.scoring.runner.Runner`: ``store``, ``jobs``, ``force``,
        ``progress``, ``log`` ...

    Returns
    -------
    pandas.DataFrame
        One row per (reference, benchmark) (:data:`hdbench.scoring.board.COLUMNS`); its
        ``attrs`` hold ``summary`` (family and overall scores), ``quick`` and ``failures``.
    """
    from hdbench.leaderboard import summarise
    from hdbench.scoring import QUICK_PROTOCOL, EvalProtocol
    from hdbench.scoring.board import check_model_id, score_board
    from hdbench.scoring.external import InMemorySubject
    from hdbench.scoring.runner import Runner

    check_model_id(name)
    runner_options.setdefault("progress", False)
    runner_options.setdefault("log", lambda line: None)
    runner = Runner(**runner_options)
    board = score_board((), [(name, InMemorySubject.of(system, name))], references, benchmarks,
                        runner=runner, protocol=QUICK_PROTOCOL if quick else EvalProtocol())
    table = board.table.sort_values(["reference", "benchmark"], ignore_index=True)
    table.attrs.update(summary=summarise(table, board.benches), quick=quick,
                       failures=[f.line() for f in runner.finish().failures])
    return table


def summarise(table):
    """Family and overall scores of a score table (see :func:`hdbench.leaderboard.summarise`)."""
    from hdbench.leaderboard import summarise as _summarise

    return _summarise(table)


def load_leaderboard(path=None):
    """The published per-seed table (``results/leaderboard.csv`` of this checkout, or
    ``path``), checked; its provenance is in ``attrs["provenance"]``."""
    import json

    from hdbench.leaderboard import read_table

    path = Path(path) if path is not None else PUBLISHED
    table = read_table(path)
    sidecar = path.with_suffix(".json")
    try:
        table.attrs["provenance"] = json.loads(sidecar.read_text()).get("provenance", {})
    except (OSError, ValueError, AttributeError):
        table.attrs["provenance"] = {}
    return table


def rank(table, leaderboard, *, strict: bool = True):
    """Where the model(s) of ``table`` stand in ``leaderboard``, without re-scoring the zoo.

    The submission's raw values are normalised with the published ceilings and floors, so
    every row is on the same scale; then all models are summarised and ranked by their overall
    score. Refused (``strict``) when the two were measured differently: other benchmark
    versions, another evaluation protocol, or other measuring code.

    Returns
    -------
    pandas.DataFrame
        One row per model: ``rank``, ``model``, ``overall``, ``error``, ``coverage``,
        ``submitted`` (True for the models of ``table``).
    """
    import pandas as pd

    from hdbench.leaderboard import summarise as _summarise
    from hdbench.scoring.score import DegenerateScoreError, normalise
    from hdbench.versions import COMPONENTS

    provenance = leaderboard.attrs.get("provenance", {})
    if strict and "quick" in table.attrs and "quick" in provenance and \
            bool(table.attrs["quick"]) != bool(provenance["quick"]):
        which = "quick" if provenance["quick"] else "full"
        raise HdbenchError(f"the leaderboard was scored with the {which} protocol; score the "
                           f"model with quick={provenance['quick']} to rank it there")
    code = ", ".join(f"{k} v{v}" for k, v in COMPONENTS.items())
    if strict and provenance.get("code_components", code) != code:
        raise HdbenchError(f"the leaderboard was measured by other code "
                           f"({provenance['code_components']}; today {code}): re-score it or "
                           "pass strict=False")
    published = leaderboard.groupby("benchmark").agg(
        version=("version", "first"), ceiling=("ceiling", "first"), floor=("floor", "first"))
    rows = []
    for row in table.itertuples():
        if row.benchmark not in published.index:
            continue
        ref = published.loc[row.benchmark]
        if strict and int(ref["version"]) != int(row.version):
            raise HdbenchError(f"{row.benchmark} is at version {row.version} here but version "
                               f"{int(ref['version'])} in the leaderboard: re-score it")
        try:
            value = normalise(row.raw, ref["ceiling"], ref["floor"]) \
                if math.isfinite(row.raw) else math.nan
        except DegenerateScoreError:
            value = math.nan
        rows.append({**row._asdict(), "ceiling": ref["ceiling"], "floor": ref["floor"],
                     "normalised": value})
    mine = pd.DataFrame(rows).drop(columns=["Index"], errors="ignore")
    submitted = set(mine["model"])
    clash = submitted & set(leaderboard["model"])
    if clash:
        raise HdbenchError(f"model ids {', '.join(sorted(clash))} are already on the leaderboard;"
                           " score under another name")
    combined = pd.concat([leaderboard, mine[leaderboard.columns.intersection(mine.columns)]],
                         ignore_index=True)
    summary = _summarise(combined)
    overall = summary[(summary["reference"] == "all") & (summary["family"] == "overall")]
    overall = overall.sort_values(["normalised", "model"], ascending=[False, True],
                                  na_position="last").reset_index(drop=True)
    return pd.DataFrame({"rank": range(1, len(overall) + 1), "model": overall["model"],
                         "overall": overall["normalised"], "error": overall["error"],
                         "coverage": overall["coverage"],
                         "submitted": overall["model"].isin(submitted)})


def benchmarks(reference: str | None = None, family: str | None = None):
    """The registered benchmarks as a table: id, family, version, direction, measurement,
    comparison, citation (``reference`` and ``family`` filter)."""
    import pandas as pd

    from hdbench.scoring import all_benchmarks

    references = None if reference is None else [reference]
    return pd.DataFrame([b.describe() for b in all_benchmarks(references, family)])
