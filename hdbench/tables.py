"""Tidy tables on disk: a plain CSV (``pandas.read_csv(path)`` opens it) and its provenance in
a JSON sidecar of the same name, both written atomically."""

from __future__ import annotations

from pathlib import Path

from hdbench.atomic import atomic_write_text
from hdbench.errors import HdbenchError


def write_tidy(path, table, provenance: dict, columns=None) -> Path:
    """Write ``table`` to ``path`` (CSV) and ``{"provenance", "columns"}`` to ``path``'s
    ``.json`` sibling; create the folder. Returns ``path``."""
    from hdbench.store import dumps

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise HdbenchError(f"cannot create output folder {path.parent}: {err.strerror}") from None
    atomic_write_text(path, table.to_csv(index=False, float_format="%.6g", lineterminator="\n"))
    atomic_write_text(path.with_suffix(".json"), dumps({
        "provenance": provenance, "columns": list(columns if columns is not None
                                                  else table.columns)}))
    return path
