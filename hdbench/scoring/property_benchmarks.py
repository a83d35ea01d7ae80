"""Property benchmarks: single-neuron and population properties against published measurements.

Each benchmark is one published measurement of the rodent or fly head-direction system (value,
spread, unit, citation, confidence tag) and the same quantity measured on the system through its
public interface (:func:`hdbench.analysis.properties.measure_properties` on the reference task's
evaluation trials), in the paper's unit. The reference circuit's bundle is not read: the
published data are the reference, so the hand-built circuits are scored like any model and their
own deviations from the data are a finding (Marques, Schrimpf & DiCarlo 2021 compare V1 models
with published single-neuron property distributions the same way).

Distance (lower is better): the Wasserstein-1 distance between the system's values and the
published distribution, in units of the published spread,

    d = W1(system, published) / σ,

where the published distribution is a normal N(μ, σ) (a log-normal with the same mean and SD for
a positive quantity such as a bandwidth) and the system's values are one number (a population
property, e.g. the packet width: a point mass) or one value per unit (a single-cell property,
e.g. each P-EN's AV bandwidth). For a point x, W1 = E|X − x|: it grows like |x − μ| far from
the data and is smallest at the median. A system in which a property cannot be measured (no
stable compass units, no shifters, no packet) and any distance above :data:`MAX_DISTANCE` get
:data:`MAX_DISTANCE`: a property that is absent is as wrong as one five spreads off.

Data ceiling (:attr:`Benchmark.data_ceiling`), the distance of the data's own variability:

- a single value: the smallest distance any system can reach, W1 of the published distribution
  to its own median, E|X − med|/σ (= √(2/π) ≈ 0.798 for a normal). A system at the published
  value scores exactly the ceiling, so the ceiling is never exceeded.
- a distribution of n cells: the expected distance of an independent sample of n cells (the
  published sample size) drawn from the published distribution, E[W1(sample_n, published)]/σ,
  i.e. what a replication of the experiment would score. A system with many more units than n
  that follows the published distribution can score slightly beyond it.

The floor is the untrained network, computed by the runner like every other benchmark's.

Spreads marked "assumed" are not published as such: the paper gives a value without its spread,
and the spread states how far off we consider a system still typical (documented per benchmark).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hdbench.errors import HdbenchError, NotComputableError
from hdbench.scoring.benchmark import Benchmark, register
from hdbench.scoring.bundle import Bundle

#: Distances are capped here (in published spreads); unmeasurable properties get it too.
MAX_DISTANCE = 5.0
#: Quantile grid of the W1 integral (midpoints of K equal probability slices).
N_QUANTILES = 20_000
#: Version of the property measurements; part of the bundle memo key.
MEASUREMENT_VERSION = 1

PEYRACHE_2015 = ("Peyrache, Lacroix, Petersen & Buzsáki (2015) Internally organized mechanisms "
                 "of the head direction sense. Nat Neurosci 18:569-575.")
TAUBE_1990 = ("Taube, Muller & Ranck (1990) Head-direction cells recorded from the postsubiculum "
              "in freely moving rats. I. J Neurosci 10:420-435 (base width ≈100° as summarised "
              "by Goodridge & Touretzky 2000, J Neurophysiol 83:3402).")
BLAIR_1997 = ("Blair, Lipscomb & Sharp (1997) Anticipatory time intervals of head-direction cells "
              "in the anterior thalamus of the rat. J Neurophysiol 78:145-159.")
STACKMAN_1998 = ("Stackman & Taube (1998) Firing properties of rat lateral mammillary single "
                 "units: head direction, head pitch, and angular head velocity. J Neurosci "
                 "18:9020-9037; cf. Blair, Cho & Sharp (1998) Neuron 21:1387 (LMN leads ATN by "
                 "15-20 ms).")
BASSETT_2001 = ("Bassett & Taube (2001) Neural correlates for angular head velocity in the rat "
                "dorsal tegmental nucleus. J Neurosci 21:5740-5751.")
TURNER_EVANS_2017 = ("Turner-Evans, Wegener, Rouault, Franconville, Wolff, Seelig, Druckmann & "
                     "Jayaraman (2017) Angular velocity integration in a fly heading circuit. "
                     "eLife 6:e23496.")
KIM_2017 = ("Kim, Rouault, Druckmann & Jayaraman (2017) Ring attractor dynamics in the "
            "Drosophila central brain. Science 356:849-853, as used by Pisokas, Heinze & Webb "
            "(2020) eLife 9:e53985; " + TURNER_EVANS_2017)
PISOKAS_2020 = ("Pisokas, Heinze & Webb (2020) The head direction circuit of two insect species. "
                "eLife 9:e53985; " + TURNER_EVANS_2017)


# -- the published distribution and the distance ---------------------------------------------


@dataclass(frozen=True)
class Published:
    """One published measurement and how a system's value is compared with it.

    Parameters
    ----------
    prop : str
        Key of :data:`hdbench.analysis.properties.PROPERTIES` measured on the system.
    value, spread : float
        Published mean and spread (SD across animals or cells, or the assumed one).
    unit : str
        Unit of both (°, ms, °/s, or "" for a fraction).
    kind : {"value", "distribution"}
        "value": the system contributes one number; "distribution": one number per unit.
    n : int or None
        Published sample size behind a distribution (its data ceiling needs it).
    shape : {"normal", "lognormal"}
        Family of the published distribution (log-normal with this mean and SD).
    confidence : str
        Tag of the fact (research notes' convention): [P] read in the primary paper, [S] a
        secondary summary; "verified" when re-read for this benchmark.
    spread_note : str
        Where the spread comes from.
    """

    prop: str
    value: float
    spread: float
    unit: str
    kind: str = "value"
    n: int | None = None
    shape: str = "normal"
    confidence: str = ""
    spread_note: str = ""

    def __post_init__(self):
        if not (math.isfinite(self.value) and math.isfinite(self.spread) and self.spread > 0):
            raise HdbenchError(f"published value and spread must be finite with spread > 0; "
                               f"got {self.value} ± {self.spread}")
        if self.kind not in ("value", "distribution"):
            raise HdbenchError(f"kind must be 'value' or 'distribution'; got {self.kind!r}")
        if self.kind == "distribution" and not (isinstance(self.n, int) and self.n >= 1):
            raise HdbenchError(f"a published distribution needs its sample size n; got {self.n}")
        if self.shape not in ("normal", "lognormal"):
            raise HdbenchError(f"shape must be 'normal' or 'lognormal'; got {self.shape!r}")
        if self.shape == "lognormal" and not self.value > 0:
            raise HdbenchError(f"a log-normal needs a positive mean; got {self.value}")

    def quantiles(self, u: np.ndarray) -> np.ndarray:
        """The published distribution's quantile function at probabilities ``u``."""
        from scipy.special import ndtri

        z = ndtri(u)
        if self.shape == "normal":
            return self.value + self.spread * z
        s2 = math.log1p((self.spread / self.value) ** 2)
        return np.exp(math.log(self.value) - s2 / 2 + math.sqrt(s2) * z)

    def distance(self, measured) -> float:
        """W1 between ``measured`` (a number or the per-unit values) and the published
        distribution, in published spreads, capped at :data:`MAX_DISTANCE` (which is also
        the distance of a missing or non-finite measurement)."""
        values = np.atleast_1d(np.asarray(measured, dtype=np.float64))
        values = values[np.isfinite(values)]
        if values.size == 0:
            return MAX_DISTANCE
        return float(min(wasserstein_to(self, values[None, :])[0], MAX_DISTANCE))

    def data_ceiling(self, n_draws: int = 4000, seed: int = 0) -> float:
        """The distance of the data's own variability (module docstring): E|X − med|/σ for a
        value; for a distribution the mean distance of ``n_draws`` samples of ``n`` values
        drawn from it (fixed seed)."""
        if self.kind == "value":
            return float(wasserstein_to(self, self.quantiles(np.array([[0.5]]))[0][None, :])[0])
        rng = np.random.default_rng(seed)
        draws = self.quantiles(rng.uniform(size=(n_draws, self.n)))
        out = [wasserstein_to(self, draws[i:i + 250]) for i in range(0, n_draws, 250)]
        return float(np.concatenate(out).mean())


def wasserstein_to(published: Published, samples: np.ndarray) -> np.ndarray:
    """W1 / σ between each row of ``samples`` [k, n] (equal-weight values) and the published
    distribution: ∫₀¹ |F_sample⁻¹(u) − F⁻¹(u)| du on :data:`N_QUANTILES` midpoints."""
    samples = np.sort(np.atleast_2d(np.asarray(samples, dtype=np.float64)), axis=1)
    n = samples.shape[1]
    u = (np.arange(N_QUANTILES) + 0.5) / N_QUANTILES
    q = published.quantiles(u)
    own = samples[:, np.minimum((u * n).astype(np.int64), n - 1)]  # [k, N_QUANTILES]
    return np.abs(own - q[None, :]).mean(1) / published.spread


# -- measuring a bundle ----------------------------------------------------------------------

#: Properties that read the recurrent weights (the projection shift and the lead).
NEEDS_WEIGHTS = ("shift", "lead_slow", "lead_fast")


def property_measurements(bundle) -> dict:
    """:func:`~hdbench.analysis.properties.measure_properties` of the bundle's test activity
    (cell types from :func:`hdbench.scoring.measures.unit_table`), computed once per bundle.
    ``weights_available`` is False when the subject provides no recurrent weights."""
    def compute():
        from hdbench.analysis.properties import measure_properties
        from hdbench.scoring.measures import unit_table

        try:
            weights = bundle.weights
        except NotComputableError:
            weights = None
        out = measure_properties(bundle.activity("test"), bundle.trials("test"), weights,
                                 unit_table(bundle))
        out["weights_available"] = weights is not None
        return out

    return bundle.memo(("properties", MEASUREMENT_VERSION), compute)


@dataclass(frozen=True)
class PropertyDistance:
    """Score function of a property benchmark: the published distance of the subject's value
    (the reference bundle is not read). Picklable, for worker processes."""

    published: Published

    def __call__(self, subject, reference) -> float:
        measured = property_measurements(subject)
        if self.published.prop in NEEDS_WEIGHTS and not measured["weights_available"]:
            raise NotComputableError(f"{self.published.prop} needs the recurrent weights")
        return self.published.distance(measured[self.published.prop])


def property_benchmark(reference: str, name: str, published: Published, *, measurement: str,
                       citation: str, data_ceiling: float | None = None) -> Benchmark:
    """A property-family :class:`Benchmark` of ``reference`` carrying ``published``.

    ``data_ceiling`` defaults to :meth:`Published.data_ceiling` (exact and fast for a value;
    a distribution's Monte-Carlo ceiling is passed in precomputed, and a test recomputes it).
    """
    if data_ceiling is None:
        data_ceiling = published.data_ceiling()
    kind = "per-unit distribution" if published.kind == "distribution" else "value"
    comparison = (f"Wasserstein-1 distance of the system's {kind} to the published "
                  f"{published.shape} distribution ({published.value:g} ± {published.spread:g}"
                  f"{published.unit}; {published.spread_note}), in published SDs, capped at "
                  f"{MAX_DISTANCE:g}")
    return Benchmark(family="properties", name=name, score_fn=PropertyDistance(published),
                     higher_is_better=False, reference=reference, measurement=measurement,
                     comparison=comparison, citation=citation, published=published.value,
                     spread=published.spread, unit=published.unit,
                     confidence=published.confidence, data_ceiling=data_ceiling)


# -- the benchmarks --------------------------------------------------------------------------

PROPERTY_BENCHMARKS = (
    property_benchmark(
        "rodent", "packet-width",
        Published("packet_width", 60.0, 15.0, "°", confidence="[P] abstract, verified",
                  spread_note="spread assumed: 25 % of the value, none published"),
        measurement="FWHM of the activity packet of the stable compass (ADN/PoS-like) units: "
                    "normalised rates against preferred direction minus the population vector "
                    "of the other units, 5° bins, rodent task",
        citation=PEYRACHE_2015),
    property_benchmark(
        "rodent", "tuning-base-width",
        Published("base_width", 100.0, 25.0, "°", confidence="[S] secondary summary, verified",
                  spread_note="spread assumed: 25 % of the value, none published"),
        measurement="mean base width (2h) of a triangle-on-baseline least-squares fit to the HD "
                    "tuning curve (5° bins) of each stable compass unit",
        citation=TAUBE_1990),
    property_benchmark(
        "rodent", "ati-adn",
        Published("ati_compass", 17.0, 12.5, "ms", confidence="[P] abstract, verified",
                  spread_note="spread assumed: a quarter of the 0-50 ms range across cells"),
        measurement="mean anticipatory time interval of the stable compass (ADN-like) units, "
                    "from the separation of their CW- and CCW-turn preferred directions, "
                    "ATI = (PD_CW - PD_CCW) / (2 mean |AV|)",
        citation=BLAIR_1997),
    property_benchmark(
        "rodent", "ati-lmn",
        Published("ati_shifter", 95.0, 40.0, "ms", confidence="[P] abstract, verified",
                  spread_note="spread assumed: covers within 1.5 SD the 35-45 ms implied by "
                              "the 15-20 ms LMN lead over ATN of Blair et al. 1998"),
        measurement="mean anticipatory time interval (as for ati-adn) of the stable shifter "
                    "(LMN-like conjunctive HD x AHV) units",
        citation=STACKMAN_1998),
    property_benchmark(
        "rodent", "ahv-fraction",
        Published("ahv_fraction", 0.75, 0.10, "", confidence="[P] abstract, verified",
                  spread_note="spread assumed: the number of cells is not in the abstract"),
        measurement="fraction of active units whose heading-balanced AV tuning curve has a "
                    "contrast (max - min) / (max + min) >= 0.1 (all active units stand for the "
                    "upstream DTN population: a model has no anatomical DTN)",
        citation=BASSETT_2001),
    property_benchmark(
        "fly", "epg-bump-fwhm",
        Published("packet_width", 90.0, 22.5, "°",
                  confidence="[P] Turner-Evans 2017 verified (PB FWHM ~2 glomeruli = 90°, EB "
                             "~100°); Kim 2017 via Pisokas 2020 not re-read",
                  spread_note="spread assumed: half an EB tile, covers the 90-100° reports"),
        measurement="FWHM of the activity packet of the stable compass (E-PG-like) units, as "
                    "rodent.properties.packet-width, fly task",
        citation=KIM_2017),
    property_benchmark(
        "fly", "pen-shift",
        Published("shift", 45.0, 13.0, "°",
                  confidence="[P] Turner-Evans 2017 verified (P-EN tiles shifted from the E-PG "
                             "wedges of the same glomerulus; one of 8 tiles)",
                  spread_note="spread assumed: SD of a position within one 45° tile (45/√12)"),
        measurement="mean signed shift of each stable shifter's projection onto the compass "
                    "units (centre of its weights above 3/4 of their maximum) from its "
                    "own preferred direction, positive in its turn direction",
        citation=PISOKAS_2020),
    property_benchmark(
        "fly", "pen-lead-slow",
        Published("lead_slow", 2.5, 2.1, "°", confidence="[P] verified (Fig. 9G, N = 10 flies)",
                  spread_note="SD across flies, published"),
        measurement="lead of the shifter population vector (shifters placed at their projection "
                    "centre) over the compass one in the turn direction, from the mean aligned "
                    "activity at turns below 30°/s",
        citation=TURNER_EVANS_2017),
    property_benchmark(
        "fly", "pen-lead-fast",
        Published("lead_fast", 20.7, 11.7, "°",
                  confidence="[P] verified (Fig. 9G, N = 10 flies, jRGECO1a in E-PG; 7.3 ± "
                             "7.2° with the indicators swapped)",
                  spread_note="SD across flies, published"),
        measurement="as pen-lead-slow, at turns of 150-180°/s",
        citation=TURNER_EVANS_2017),
    property_benchmark(
        "fly", "pen-av-bandwidth",
        Published("bandwidth", 145.0, 82.0, "°/s", kind="distribution", n=12,
                  shape="lognormal",
                  confidence="[P] verified (N = 12 cells); the 10-90 % definition is ours",
                  spread_note="SD across cells, published"),
        measurement="per stable shifter: AV range of the 10-90 % rise of a weighted sigmoid "
                    "fit to its heading-pooled rate in 12°/s AV bins",
        citation=TURNER_EVANS_2017,
        data_ceiling=0.350),  # Published.data_ceiling(n_draws=20_000)
)

for _bench in PROPERTY_BENCHMARKS:
    register(_bench, replace=True)


# -- tables of measured values ---------------------------------------------------------------

#: Columns of :func:`property_rows` / :func:`property_table` (``value``: the system's value in
#: the paper's unit; for a per-unit distribution its median, with ``q25`` / ``q75``).
TABLE_COLUMNS = ("system", "group", "seed", "reference", "benchmark", "property", "unit",
                 "value", "q25", "q75", "n_values", "published", "spread", "distance",
                 "data_ceiling", "confidence")


def property_rows(system, reference: str, *, name: str, group: str, seed: int,
                  protocol=None) -> list[dict]:
    """One row per property benchmark of ``reference`` for ``system``: its measured value (in
    the paper's unit) beside the published one, the distance and the data ceiling."""
    from hdbench.scoring.benchmark import all_benchmarks
    from hdbench.scoring.bundle import EvalProtocol, task_for_reference

    protocol = protocol or EvalProtocol()
    bundle = Bundle(system, task_for_reference(reference), protocol, label=name)
    measured = property_measurements(bundle)
    rows = []
    for bench in all_benchmarks([reference], family="properties"):
        published = bench.score_fn.published
        values = np.atleast_1d(np.asarray(measured[published.prop], dtype=np.float64))
        finite = values[np.isfinite(values)]
        weights_missing = published.prop in NEEDS_WEIGHTS and not measured["weights_available"]
        value, q25, q75 = (np.percentile(finite, [50, 25, 75]) if finite.size
                           else (math.nan,) * 3)
        rows.append({
            "system": name, "group": group, "seed": int(seed), "reference": reference,
            "benchmark": bench.id, "property": published.prop, "unit": published.unit,
            "value": float(value),
            "q25": float(q25) if published.kind == "distribution" else math.nan,
            "q75": float(q75) if published.kind == "distribution" else math.nan,
            "n_values": int(finite.size), "published": published.value,
            "spread": published.spread,
            "distance": math.nan if weights_missing else published.distance(values),
            "data_ceiling": bench.data_ceiling, "confidence": published.confidence})
    return rows


def markdown_summary(table) -> str:
    """A Markdown table: one row per property benchmark, published value ± spread, then each
    group's measured value (mean over its seeds / instances, with their range)."""
    groups = list(dict.fromkeys(table["group"]))
    header = ["benchmark", "published", *groups]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for bench_id, rows in table.groupby("benchmark", sort=False):
        first = rows.iloc[0]
        unit = first["unit"]
        cells = [f"`{bench_id}`", f"{first['published']:g} ± {first['spread']:g}{unit}"]
        for group in groups:
            values = rows.loc[rows["group"] == group, "value"].to_numpy(dtype=np.float64)
            finite = values[np.isfinite(values)]
            if finite.size == 0:
                cells.append("n/a" if values.size else "")
                continue
            text = f"{finite.mean():.3g}{unit}"
            if finite.size > 1:
                text += f" ({finite.min():.3g}–{finite.max():.3g})"
            if finite.size < values.size:
                text += f" [{values.size - finite.size} n/a]"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
