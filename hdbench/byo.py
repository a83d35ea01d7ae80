"""Bring your own model: score a user's model file or recorded activity (``hdbench score``).

A subject (:class:`~hdbench.scoring.external.ExternalSubject` for ``path/to/file.py:factory``,
:class:`~hdbench.scoring.external.PluginSubject` for an installed ``hdbench.models`` plugin,
:class:`~hdbench.scoring.external.ActivitySubject` for an ``.npz`` of rates) goes through the
leaderboard's machinery (:func:`hdbench.leaderboard.run_leaderboard` without a zoo): the same
cache, ceilings, floors and normalisation, and its scores are stored like any other subject's.
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
from hdbench.scoring import QUICK_PROTOCOL, EvalProtocol, subject_key
from hdbench.scoring.external import (
    ActivitySubject,
    ExternalSubject,
    PluginSubject,
    model_id_from,
    parse_model_spec,
)
from hdbench.store import Store, jsonable


def protocol_for(quick: bool) -> EvalProtocol:
    return QUICK_PROTOCOL if quick else EvalProtocol()


def model_subject(text: str, name: str | None = None):
    """``(model id, subject)`` of ``"[NAME=]path/to/file.py:factory"`` (the id defaults to the
    file's stem) or of the name of an installed ``hdbench.models`` plugin. Builds the system
    once here, so that a broken model fails before any job is planned."""
    text = str(text)
    if ".py:" not in text and ":" not in text and "/" not in text:
        subject = PluginSubject.from_name(text)
        subject.load()
        return model_id_from(name or text), subject
    given, path, factory = parse_model_spec(text)
    subject = ExternalSubject.from_file(path, factory)
    subject.load()
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
    table: object  # per-benchmark rows (hdbench.leaderboard.COLUMNS)
    summary: object  # family and overall aggregates
    failures: list = field(default_factory=list)  # jobs that failed as a whole
    paths: dict = field(default_factory=dict)


def _failed_rows(store: Store, model_id: str, subject, benches, protocol, table):
    """Rows for benchmarks whose job ran but raised: raw NaN, the error as the note."""
    from hdbench.leaderboard import COLUMNS

    done = set(table["benchmark"])
    key = subject_key(subject, protocol)
    rows = []
    for reference, reference_benches in benches.items():
        for bench in reference_benches:
            if bench.id in done:
                continue
            failure = store.read_failure(store.score_path(bench.id, bench.version, key))
            message = (failure or {}).get("error", {}).get("message", "not scored")
            rows.append({**dict.fromkeys(COLUMNS, math.nan), "model": model_id, "seed": 0,
                         "reference": reference, "benchmark": bench.id,
                         "version": bench.version, "family": bench.family,
                         "higher_is_better": bench.higher_is_better,
                         "note": f"failed: {message.splitlines()[0] if message else ''}"})
    return rows


def score(model_id: str, subject, references=None, *, quick: bool = False, jobs: int = 1,
          dask_scheduler: str | None = None, store=None, out_dir=None, progress: bool = True,
          log: Callable[[str], None] = print) -> ScoreResult:
    """Score one subject against ``references`` (default: every available circuit).

    Ceilings and floors come from the cache or are computed first. Writes ``scores.csv`` (tidy
    rows under a provenance header, like ``leaderboard.csv``) and ``scores.json`` into
    ``out_dir`` when given, and logs the table.
    """
    import pandas as pd

    from hdbench.leaderboard import (
        leaderboard_provenance,
        resolve_benchmarks,
        resolve_references,
        run_leaderboard,
    )

    store = store if isinstance(store, Store) else Store(store)
    specs = resolve_references(references)
    benches = resolve_benchmarks(None, specs)
    protocol = protocol_for(quick)
    outcome = run_leaderboard(zoo=(), references=specs, subjects=[(model_id, subject)],
                              write=False, quick=quick, jobs=jobs,
                              dask_scheduler=dask_scheduler, store=store, progress=progress,
                              log=log)
    table = outcome.table
    failed = _failed_rows(store, model_id, subject, benches, protocol, table)
    if failed:
        table = pd.concat([table, pd.DataFrame(failed, columns=table.columns)],
                          ignore_index=True)
    table = table.sort_values(["reference", "benchmark"], ignore_index=True)
    mine = outcome.summary[outcome.summary["model"] == model_id]
    result = ScoreResult(table=table, summary=mine, failures=outcome.failures)
    log(format_result(model_id, subject, table, mine))
    if out_dir is not None:
        header = leaderboard_provenance(protocol, quick, specs, [], benches)
        header.update(models=model_id, subject=subject.describe())
        result.paths = write_result(out_dir, model_id, subject, table, mine, header)
        log(f"wrote {', '.join(str(p) for p in result.paths.values())}")
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
    from hdbench.leaderboard import render_csv

    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise HdbenchError(f"cannot create output folder {out_dir}: {err.strerror}") from None
    paths = {"csv": out_dir / "scores.csv", "json": out_dir / "scores.json"}
    atomic_write_text(paths["csv"], render_csv(table, header))
    record = {"model": model_id, "subject": {**subject.identity(), "label": subject.describe()},
              "provenance": header,
              "scores": table.to_dict(orient="records"),
              "summary": summary.to_dict(orient="records")}
    atomic_write_text(paths["json"], json.dumps(jsonable(record), indent=2, sort_keys=True,
                                                allow_nan=False, default=str) + "\n")
    return paths
