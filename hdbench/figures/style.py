"""House style of the figures: colour-blind-safe palettes, rcParams, deterministic saving.

Colours are fixed per meaning so that a cell type, a model or a reference circuit has the same
colour in every figure. Cell types use the Okabe & Ito (2008) palette; systems (models and
references) use Paul Tol's "muted" scheme; scores use the ``cividis`` colour map. All three are
designed to stay distinct under the common forms of colour-vision deficiency.
"""

from __future__ import annotations

import contextlib
import io
import re
import zlib
from pathlib import Path

from hdbench.atomic import atomic_write_bytes
from hdbench.errors import HdbenchError

#: One colour per cell type (Okabe–Ito).
CELL_TYPE_COLORS = {
    "compass": "#0072B2",      # blue
    "shifter_cw": "#D55E00",   # vermillion
    "shifter_ccw": "#009E73",  # bluish green
    "inhibitory": "#CC79A7",   # reddish purple
    "other": "#999999",        # grey
    "inactive": "#DDDDDD",     # light grey
}
#: Display names of cell types.
CELL_TYPE_LABELS = {"compass": "compass", "shifter_cw": "CW shifter", "shifter_ccw": "CCW shifter",
                    "inhibitory": "inhibitory", "other": "other (untuned)",
                    "inactive": "inactive"}
#: Display order of cell types.
CELL_TYPE_ORDER = ("compass", "shifter_cw", "shifter_ccw", "other", "inactive")

#: Reference circuits and the named zoo models (Tol "muted" plus a dark grey).
SYSTEM_COLORS = {
    "rodent": "#882255",            # wine
    "fly": "#999933",               # olive
    "ctrnn": "#332288",             # indigo
    "ctrnn-cueva-0p1x": "#88CCEE",  # cyan
    "ctrnn-cueva-3x": "#44AA99",    # teal
    "ctrnn-rodent": "#CC6677",      # rose
    "ctrnn-fly": "#117733",         # green
    "gru": "#AA4499",               # purple
    "lstm": "#DDCC77",              # sand
    "vanilla": "#661100",           # brown
    "ctrnn-untrained": "#888888",   # grey
}
#: Kao-grid models are coloured by their rate function (retanh, the default, as ``ctrnn``;
#: the others from Okabe–Ito colours that no cell type uses).
ACTIVATION_COLORS = {"retanh": "#332288", "tanh": "#E69F00", "relu": "#56B4E9",
                     "softplus": "#000000"}
#: Kao-grid rate penalties by marker.
RATE_MARKERS = {"0": "o", "1e-3": "s", "1e-2": "^"}
_FALLBACK = ("#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677",
             "#882255", "#AA4499")
_KAO = re.compile(r"^kao-(?P<activation>[A-Za-z0-9]+)-rate(?P<rate>[0-9e.+-]+)$")

#: Colour map of normalised scores (0 = floor, 1 = ceiling).
SCORE_CMAP = "cividis"
#: Diverging colour map of weights.
WEIGHT_CMAP = "RdBu_r"
#: Cyclic colour map of headings.
HEADING_CMAP = "twilight"

RC = {
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "legend.title_fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": "hdbench",
    "svg.fonttype": "path",
    "pdf.fonttype": 42,
    "path.simplify": True,
    "image.interpolation": "nearest",
}
_METADATA = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None},
}
FORMATS = tuple(_METADATA)


def kao_parts(model_id: str) -> tuple[str, str] | None:
    """``(activation, rate label)`` of a Kao-grid model id such as ``kao-relu-rate1e-3``."""
    match = _KAO.match(str(model_id))
    return (match["activation"], match["rate"]) if match else None


def base_model(model_id: str) -> str:
    """The model id without a ``-quick`` suffix (quick models share their model's colour)."""
    model_id = str(model_id)
    return model_id[:-len("-quick")] if model_id.endswith("-quick") else model_id


def system_color(name: str) -> str:
    """The colour of a model id or reference name, the same in every figure.

    Kao-grid models take their activation's colour; unknown ids get a colour from a stable
    hash of the name.
    """
    name = base_model(name)
    if name in SYSTEM_COLORS:
        return SYSTEM_COLORS[name]
    kao = kao_parts(name)
    if kao and kao[0] in ACTIVATION_COLORS:
        return ACTIVATION_COLORS[kao[0]]
    return _FALLBACK[zlib.crc32(name.encode()) % len(_FALLBACK)]


def text_color(color: str) -> tuple:
    """``color`` darkened until text in it is readable on white (light colours such as sand
    or cyan stay recognisable but reach a luminance of at most 0.55)."""
    from matplotlib.colors import to_rgb

    rgb = to_rgb(color)
    luminance = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    scale = min(1.0, 0.55 / luminance) if luminance > 0 else 1.0
    return tuple(c * scale for c in rgb)


@contextlib.contextmanager
def figure_style():
    """Seaborn's ``ticks`` style with the house rcParams, restored afterwards."""
    import matplotlib as mpl
    import seaborn as sns

    with mpl.rc_context():
        sns.set_theme(context="paper", style="ticks", rc=RC)
        yield


#: Font size of a figure's heading (its title and notes).
HEADING_SIZE = 10


def heading(fig, title: bool | str | None, default: str, *, note: str | None = None) -> None:
    """Give ``fig`` a heading: ``default`` (the paper caption) when ``title`` is True, the string
    ``title`` itself, or none when ``title`` is False or None; ``note`` (what the data left
    out, where they came from) is added as a last line whatever ``title`` is.

    Builders leave titles off by default, so a user's own figure carries no paper caption;
    ``hdbench figures`` asks for them and numbers them (:func:`number_heading`).
    """
    if title is not None and not isinstance(title, bool | str):
        raise HdbenchError(f"title must be True, False, None or a string; got {title!r}")
    lines = [default if title is True else title if isinstance(title, str) else ""]
    lines.append(note or "")
    text = "\n".join(line for line in lines if line)
    if text:
        fig.suptitle(_wrap_heading(fig, text), fontsize=HEADING_SIZE)


def _wrap_heading(fig, text: str) -> str:
    """Wrap each line of a heading to the figure's width (matplotlib cuts a suptitle at the
    figure's edges), leaving room for the ``Figure N.`` that :func:`number_heading` adds."""
    import textwrap

    width = max(20, int(fig.get_figwidth() * 72 / (0.62 * HEADING_SIZE)) - len("Figure 12. "))
    return "\n".join(textwrap.fill(line, width) for line in text.split("\n"))


def number_heading(fig, number: int) -> None:
    """Prefix the heading of ``fig`` with ``Figure <number>.`` (the paper figures)."""
    text = fig.get_suptitle()
    if text:
        fig.suptitle(f"Figure {number}. {text}", fontsize=HEADING_SIZE)


def check_formats(formats) -> tuple[str, ...]:
    """Validate output formats (``png``, ``pdf``, ``svg``) given as a list or ``"png,svg"``."""
    if isinstance(formats, str):
        formats = formats.split(",")
    out = tuple(dict.fromkeys(f.strip().lower().lstrip(".") for f in formats if f.strip()))
    bad = [f for f in out if f not in FORMATS]
    if bad or not out:
        raise HdbenchError(f"unknown figure format(s) {', '.join(bad) or '(none)'}; expected a "
                           f"comma-separated list of {', '.join(FORMATS)}")
    return out


def freeze_layout(fig) -> None:
    """Run the figure's layout engine once (an Agg draw at the saving resolution), then keep
    those positions.

    Constrained layout is recomputed on every draw, starting from the positions the previous
    draw left, so without this an SVG saved after a PNG would differ from an SVG saved alone.
    """
    import matplotlib as mpl
    from matplotlib.layout_engine import PlaceHolderLayoutEngine

    engine = fig.get_layout_engine()
    if engine is None or isinstance(engine, PlaceHolderLayoutEngine):
        return
    with mpl.rc_context({"svg.hashsalt": RC["svg.hashsalt"]}):
        fig.savefig(io.BytesIO(), format="png", dpi=RC["savefig.dpi"], facecolor="white")
    fig.set_layout_engine("none")


def figure_bytes(fig, fmt: str) -> bytes:
    """The figure rendered to ``fmt`` with fixed metadata and a frozen layout: the same figure
    gives the same bytes, whatever was saved before."""
    import matplotlib as mpl

    (fmt,) = check_formats([fmt])
    freeze_layout(fig)
    buffer = io.BytesIO()
    with mpl.rc_context({"svg.hashsalt": RC["svg.hashsalt"]}):
        fig.savefig(buffer, format=fmt, metadata=_METADATA[fmt], dpi=RC["savefig.dpi"],
                    facecolor="white")
    data = buffer.getvalue()
    return _number_clip_paths(data) if fmt == "svg" else data


_CLIP_ID = re.compile(rb"url\(#(p[0-9a-f]{10})\)")


def _number_clip_paths(svg: bytes) -> bytes:
    """Name the SVG's clip paths clip0, clip1, … in order of first use.

    matplotlib names a clip rectangle by a hash of its float bounds, and constrained layout
    can place the same axes a few ulps apart from one figure to the next (the drawn
    coordinates, printed to 6 decimals, are equal); the names would then differ.
    """
    names = {old: f"clip{k}".encode() for k, old in
             enumerate(dict.fromkeys(_CLIP_ID.findall(svg)))}
    if not names:
        return svg
    return re.sub(rb"\b(" + b"|".join(names) + rb")\b", lambda m: names[m.group(1)], svg)


def save_figure(fig, path, formats=("png",)) -> list[Path]:
    """Write ``fig`` as ``path`` with each format's suffix (atomically); returns the paths."""
    path = Path(path)
    written = []
    for fmt in check_formats(formats):
        target = path.with_suffix(f".{fmt}")
        atomic_write_bytes(target, figure_bytes(fig, fmt))
        written.append(target)
    return written
