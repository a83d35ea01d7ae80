"""Rendering of a summarised leaderboard: Markdown, the HTML page (from the template
``templates/leaderboard.html``) and the text table ``hdbench leaderboard`` ends with."""

from __future__ import annotations

import math

from hdbench.scoring import format_score


def ranking(summary) -> list[str]:
    """Models best first by their overall score over all references (missing last)."""
    overall = summary[(summary["reference"] == "all") & (summary["family"] == "overall")]
    ordered = overall.sort_values(["normalised", "model"], ascending=[False, True],
                                  na_position="last")
    return ordered["model"].tolist()


NORMALISATION_NOTE = (
    "Ranked by brain-likeness: the mean normalised score over the neural benchmark families "
    "(tuning, representation, connectivity, dynamics, properties) that passed the validity "
    "battery (results/validity); experimental benchmarks are listed but left out. Task "
    "competence (the task family) is shown apart and does not enter the rank. "
    "Normalised score = (raw - floor) / (ceiling - floor): 1 = as good as a second instance of "
    "the reference circuit (ceiling: mean over instances 1-3 against instance 0), 0 = as good "
    "as an untrained network (floor: mean over 3 untrained seeds), for similarities and "
    "distances alike. Stored unclipped in leaderboard.csv; shown clipped to [0, 1] (* = "
    "clipped). ± = standard error over seeds, scaled by 1/|ceiling - floor|. Family and "
    "overall scores are unweighted means of the leaf scores; (n/m) = coverage, leaf benchmarks "
    "that contributed / that exist."
)


def summary_columns(summary) -> list[tuple[str, str]]:
    """(reference, family) columns of the main table: brain-likeness and task competence over
    all references first, then per reference its brain-likeness, neural families and task."""
    columns = [("all", "overall"), ("all", "task")]
    for reference in sorted(set(summary["reference"]) - {"all"}):
        families = sorted(set(summary.loc[summary["reference"] == reference, "family"])
                          - {"overall", "task"})
        columns += [(reference, "overall")] + [(reference, f) for f in families]
        columns += [(reference, "task")]
    return [c for c in columns if ((summary["reference"] == c[0])
                                   & (summary["family"] == c[1])).any()]


def _column_name(reference: str, family: str) -> str:
    if reference == "all":
        return "brain-likeness" if family == "overall" else "task competence"
    return f"{reference} {'brain-likeness' if family == 'overall' else family}"


def main_rows(summary) -> tuple[list[str], list[list[tuple[str, object]]]]:
    """Header and rows of the main table; each cell is (text, sort/colour value)."""
    columns = summary_columns(summary)
    header = ["rank", "model", "seeds"] + [_column_name(ref, fam) for ref, fam in columns]
    indexed = summary.set_index(["model", "reference", "family"])
    rows = []
    for rank, model in enumerate(ranking(summary), start=1):
        seeds = int(summary.loc[summary["model"] == model, "n_seeds"].iloc[0])
        cells = [(str(rank), rank), (model, model), (str(seeds), seeds)]
        for ref, fam in columns:
            if (model, ref, fam) not in indexed.index:
                cells.append(("", math.nan))
                continue
            row = indexed.loc[(model, ref, fam)]
            cells.append((f"{format_score(row['normalised'], row['error'])} ({row['coverage']})",
                          float(row["normalised"])))
        rows.append(cells)
    return header, rows


def status_text(bench_id: str, version: int, validity: dict | None) -> str:
    """``validated``, ``experimental (fails ...)`` or ``not validated`` (no battery yet)."""
    if validity is None:
        return "not validated (no battery run)"
    known = validity.get(bench_id)
    if known is None or known[0] != int(version):
        return "experimental (not validated at this version)"
    return "validated" if known[1] else f"experimental (fails {known[2]})"


def benchmark_rows(table, models, validity: dict | None = None
                   ) -> tuple[list[str], list[list[tuple[str, object]]]]:
    """Per-benchmark table: validity status, normalised mean over seeds per model, with the
    raw value."""
    header = ["benchmark", "v", "status", "better", "ceiling", "floor"] + list(models) + \
        ["notes"]
    rows = []
    for bench_id, bench_rows in table.groupby("benchmark", sort=True):
        first = bench_rows.iloc[0]
        status = status_text(bench_id, first["version"], validity)
        cells = [(bench_id, bench_id), (str(first["version"]), first["version"]),
                 (status, status),
                 ("higher" if first["higher_is_better"] else "lower", ""),
                 (f"{first['ceiling']:.4g}", first["ceiling"]),
                 (f"{first['floor']:.4g}", first["floor"])]
        for model in models:
            mine = bench_rows[bench_rows["model"] == model]
            if mine.empty:
                cells.append(("", math.nan))
                continue
            value = float(mine["normalised"].mean())
            cells.append((f"{format_score(value)} (raw {mine['raw'].mean():.4g})", value))
        notes = "; ".join(sorted({n for n in bench_rows["note"].fillna("") if n}))
        cells.append((notes, notes))
        rows.append(cells)
    return header, rows


def glossary(benches: dict | None, validity: dict | None = None) -> list[dict]:
    """One entry per benchmark: id, family, version, direction, measurement, comparison,
    citation (from the registry) and validity status."""
    if not benches:
        return []
    return [{**bench.describe(), "status": status_text(bench.id, bench.version, validity)}
            for ref in sorted(benches) for bench in benches[ref]]


def _md_table(header, rows) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(text.replace("|", "\\|") for text, _ in row) + " |"
              for row in rows]
    return lines


def render_markdown(table, summary, header: dict, benches=None, validity=None) -> str:
    main_header, main = main_rows(summary)
    bench_header, per_bench = benchmark_rows(table, ranking(summary), validity)
    lines = ["# hdbench leaderboard: models vs biology", ""]
    lines += [f"- {key}: {value}" for key, value in header.items()]
    lines += ["", NORMALISATION_NOTE, ""] + _md_table(main_header, main)
    lines += ["", "## Per benchmark", "",
              "Normalised score per model (mean over seeds) and its raw value.", ""]
    lines += _md_table(bench_header, per_bench)
    entries = glossary(benches, validity)
    if entries:
        lines += ["", "## Benchmarks", ""]
        lines += [f"- **{e['id']}** (v{e['version']}, {e['family']}, "
                  f"{'higher' if e['higher_is_better'] else 'lower'} is better): "
                  f"{e['measurement']}; {e['comparison']}. {e['citation']} "
                  f"Status: {e['status']}." for e in entries]
    return "\n".join(lines) + "\n"


def render_html(table, summary, header: dict, benches=None, validity=None) -> str:
    """The page, from the template ``templates/leaderboard.html`` (Jinja2, autoescaped)."""
    import jinja2

    main_header, main = main_rows(summary)
    bench_header, per_bench = benchmark_rows(table, ranking(summary), validity)
    env = jinja2.Environment(loader=jinja2.PackageLoader("hdbench", "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True)

    def cell_value(value):
        return value if isinstance(value, str) or (isinstance(value, (int, float))
                                                    and math.isfinite(value)) else ""

    return env.get_template("leaderboard.html").render(
        header=header, note=NORMALISATION_NOTE, main_header=main_header, main_rows=main,
        bench_header=bench_header, bench_rows=per_bench, glossary=glossary(benches, validity),
        value=cell_value)


def format_summary_table(summary, limit: int = 30) -> str:
    """The main table as aligned text (the end of ``hdbench leaderboard``)."""
    header, rows = main_rows(summary)
    rows = [[text for text, _ in row] for row in rows[:limit]]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in rows]
    return "\n".join(lines)
