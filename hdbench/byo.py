"""Bring your own model: score a user's model file or recorded activity (``hdbench score``).

A subject (:class:`~hdbench.scoring.external.ExternalSubject` for ``path/to/file.py:factory``,
:class:`~hdbench.scoring.external.PluginSubject` for an installed ``hdbench.models`` plugin,
:class:`~hdbench.scoring.external.ActivitySubject` for an ``.npz`` of rates) is scored as a
board of one row (:func:`hdbench.scoring.board.score_board`): the same runner, cache, ceilings,
floors and normalisation as the leaderboard, its scores stored like any other subject's.
:func:`score` then prints a table and writes ``scores.csv`` and ``scores.json``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hdbench.atomic import atomic_write_text
from hdbench.errors import HdbenchError
from hdbench.scoring import QUICK_PROTOCOL, EvalProtocol
from hdbench.scoring.external import (
    ActivitySubject,
    ExternalSubject,
    PluginSubject,
    model_id_from,
)
from hdbench.store import jsonable
from hdbench.user_models import parse_model_spec


def protocol_for(quick: bool) -> EvalProtocol:
    return QUICK_PROTOCOL if quick else EvalProtocol()


def model_subject(text: str, name: str | None = None):
    """``(model id, subject)`` of ``"[NAME=]path/to/file.py:factory"`` (the id defaults to the
    file's stem) or of the name of an installed ``hdbench.models`` plugin. Builds the system
    once here, so that a broken model fails before any job is planned."""
    text = str(text)
    if ".py:" not in text and ":" not in text and "/" not in text:
        return model_id_from(name or text), PluginSubject.from_name(text)
    given, path, factory = parse_model_spec(text)
    subject = ExternalSubject.from_file(path, factory)
    return model_id_from(name or given or path.stem), subject


def activity_subject(path, references, quick: bool, weights_key: str = "W",
                     name: str | None = None) -> tuple[str, ActivitySubject]:
    """``(model id, subject)`` of a validated activity file; the id defaults to its stem."""
    subject = ActivitySubject.from_file(path, references, protocol_for(quick), weights_key)
    return model_id_from(name or Path(path).stem), subject


def parse_references(values) -> list[str] | None:
    """``--reference`` values (repeatable, comma-separated) as a list; None for the default."""
    if not values:
        return None
    names = [part.strip() for value in values for part in str(value).split(",")]
    if not all(names):
        raise HdbenchError(f"empty reference name in --reference {','.join(values)!r}")
    return names


@dataclass
class ScoreResult:
    table: object  # per-benchmark rows (hdbench.scoring.board.COLUMNS)
    summary: object  # family and overall aggregates
    report: object = None  # hdbench.scoring.runner.Report
    paths: dict = field(default_factory=dict)

    @property
    def failures(self) -> list:
        return self.report.failures if self.report is not None else []


def score(model_id: str, subject, references=None, *, quick: bool = False, out_dir=None,
          log: Callable[[str], None] = print, **runner_options) -> ScoreResult:
    """Score one subject against ``references`` (default: every available circuit).

    Ceilings and floors come from the cache or are computed first. Writes ``scores.csv`` (tidy
    rows, a plain CSV like ``leaderboard.csv``) and ``scores.json`` (rows, aggregates and
    provenance) into ``out_dir`` when given, and logs the table. ``runner_options`` are those
    of :class:`~hdbench.scoring.runner.Runner` (``store``, ``jobs``, ``force``, ...). A
    benchmark that failed is a row with the error as its note, and a failure in the report.
    """
    from hdbench.atomic import check_out_dir
    from hdbench.leaderboard import leaderboard_provenance, summarise
    from hdbench.scoring.board import score_board
    from hdbench.scoring.runner import Runner

    if out_dir is not None:
        out_dir = check_out_dir(out_dir)
    runner = Runner(log=log, **runner_options)
    protocol = protocol_for(quick)
    board = score_board((), [(model_id, subject)], references, None, runner=runner,
                        protocol=protocol)
    if runner.dry_run:
        runner.finish()
        return ScoreResult(table=None, summary=None, report=runner.report)
    table = board.table[board.table["model"] == model_id].sort_values(
        ["reference", "benchmark"], ignore_index=True)
    summary = summarise(table, board.benches)
    result = ScoreResult(table=table, summary=summary, report=runner.report)
    log(format_result(model_id, subject, table, summary))
    if out_dir is not None:
        header = leaderboard_provenance(protocol, quick, board.references, [model_id],
                                        board.benches)
        header.update(subject=subject.describe())
        result.paths = write_result(out_dir, model_id, subject, table, summary, header)
        log(f"wrote {', '.join(str(p) for p in result.paths.values())}")
    runner.finish()
    return result


def _fmt(value) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.4g}"


def format_result(model_id: str, subject, table, summary) -> str:
    """The per-benchmark table and the family / overall scores as text."""
    lines = [f"{model_id}: {subject.describe()}", ""]
    header = ("benchmark", "raw", "ceiling", "floor", "normalised", "note")
    rows = [(r.benchmark, _fmt(r.raw), _fmt(r.ceiling), _fmt(r.floor), _fmt(r.normalised),
             r.note if isinstance(r.note, str) else "") for r in table.itertuples()]
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    for row in (header, *rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                     .rstrip())
    lines += ["", "normalised score (1 = reference instance, 0 = untrained network); "
                  "coverage = leaf benchmarks scored / that exist"]
    for r in summary.itertuples():
        lines.append(f"  {r.reference:8s} {r.family:15s} {_fmt(r.normalised):>8s}  "
                     f"({r.coverage})")
    return "\n".join(lines)


def write_result(out_dir, model_id: str, subject, table, summary, header: dict) -> dict:
    """``scores.csv`` and ``scores.json`` in ``out_dir`` (atomically)."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise HdbenchError(f"cannot create output folder {out_dir}: {err.strerror}") from None
    paths = {"csv": out_dir / "scores.csv", "json": out_dir / "scores.json"}
    atomic_write_text(paths["csv"], table.to_csv(index=False, float_format="%.6g",
                                                 lineterminator="\n"))
    record = {"model": model_id, "subject": {**subject.identity(), "label": subject.describe()},
              "provenance": header,
              "scores": table.to_dict(orient="records"),
              "summary": summary.to_dict(orient="records")}
    atomic_write_text(paths["json"], json.dumps(jsonable(record), indent=2, sort_keys=True,
                                                allow_nan=False, default=str) + "\n")
    return paths
