"""Graded degradations of the reference circuits (reference_circuits.degradations)."""

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

import reference_circuits
from hdbench.errors import HdbenchError
from hdbench.system import Silence, System
from hdbench.task import make_trials
from reference_circuits import measure
from reference_circuits.degradations import KINDS, derangement, remap_heading, shuffle_inputs

LEVELS = {
    "shuffle-weights": [0.0, 0.1, 0.25, 0.5, 0.75, 1.0],
    "weight-noise": [0.0, 0.005, 0.01, 0.03, 0.1, 0.3],
    "rate-noise": [0.0, 0.25, 0.5, 1.0, 2.0, 4.0],
    "tuning-scatter": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
    "time-constants": [0.0, 0.1, 0.25, 0.5, 1.0, 2.0],
    "heading-remap": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
}


@pytest.fixture(scope="module")
def rodent():
    return reference_circuits.load("rodent", noise_std=0.0)


@pytest.fixture(scope="module")
def trials():
    return make_trials("rodent", 8, seed=[9, 0])


@pytest.fixture(scope="module")
def intact(rodent, trials):
    return rodent.simulate(trials)


def _rate_similarity(a, b) -> float:
    """Mean over units of the correlation of two activities' rates (units silent in either: 0)."""
    x, y = a.rates.reshape(-1, a.n_units), b.rates.reshape(-1, b.n_units)
    out = []
    for i in range(x.shape[1]):
        ok = x[:, i].std() > 0 and y[:, i].std() > 0
        out.append(np.corrcoef(x[:, i], y[:, i])[0, 1] if ok else 0.0)
    return float(np.mean(out))


@pytest.mark.parametrize("kind", KINDS)
def test_level_zero_reproduces_the_intact_circuit_exactly(rodent, trials, intact, kind):
    d = reference_circuits.degrade(rodent, kind, 0.0, seed=3)
    act = d.simulate(trials)
    np.testing.assert_array_equal(act.rates, intact.rates)
    np.testing.assert_array_equal(act.outputs, intact.outputs)
    np.testing.assert_array_equal(d.recurrent_weights(), rodent.recurrent_weights())
    a = torch.randn(4, rodent.n_units)
    torch.testing.assert_close(d.vector_field(a), rodent.vector_field(a), rtol=0, atol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_growing_levels_move_the_system_away_monotonically(rodent, trials, intact, kind):
    levels = LEVELS[kind]
    similarity = [_rate_similarity(intact, reference_circuits.degrade(rodent, kind, level)
                                   .simulate(trials)) for level in levels]
    assert similarity[0] == pytest.approx(1.0)
    if kind == "shuffle-weights":
        # the attractor stops integrating at any level > 0 (0.1 % already): activity has
        # nowhere left to fall; the wiring moves away monotonically
        assert max(similarity[1:]) < 0.3
        W = rodent.recurrent_weights().ravel()
        similarity = [np.corrcoef(W, reference_circuits.degrade(rodent, kind, level)
                                  .recurrent_weights().ravel())[0, 1] for level in levels]
    assert spearmanr(levels, similarity)[0] == pytest.approx(-1.0)
    assert similarity[-1] < 0.8


@pytest.mark.parametrize("kind", KINDS)
def test_decode_error_grows_with_level(rodent, trials, kind):
    levels = LEVELS[kind][::2] + [LEVELS[kind][-1]]
    errors = [measure.decode_metrics(reference_circuits.degrade(rodent, kind, level)
                                     .simulate(trials).decoded_heading(), trials.heading,
                                     trials.mask)["rms_error_deg"] for level in levels]
    assert errors[0] < 5.0 and errors[-1] > 2 * errors[0] + 5.0
    if kind != "shuffle-weights":  # beyond its cliff the error is chance, up or down
        assert np.all(np.diff(errors) > 0), errors


def test_degraded_circuit_is_a_system_with_the_circuits_facts(rodent):
    d = reference_circuits.degrade(rodent, "shuffle-weights", 0.5, seed=1)
    assert isinstance(d, System)
    assert d.n_units == rodent.n_units and d.cell_types == rodent.cell_types
    assert d.task == "rodent" and d.name == "rodent" and d.version == rodent.version
    np.testing.assert_array_equal(d.preferred_directions, rodent.preferred_directions)
    assert "shuffle-weights" in repr(d)
    from hdbench.analysis import vector_field

    vf = vector_field(d, dt=0.025)
    a = torch.randn(3, rodent.n_units, dtype=torch.float64)
    W = torch.as_tensor(d.recurrent_weights())
    by_hand = vf.field(a) - vf.field(torch.zeros_like(a))
    alpha = rodent._alpha(0.025, rodent.substeps(0.025)).double()
    torch.testing.assert_close(by_hand, alpha * (-a + torch.relu(a) @ W.T), rtol=1e-5,
                               atol=1e-5)


def test_name_and_instance_seed(rodent):
    d = reference_circuits.degrade("fly", "rate-noise", 0.5, instance_seed=2)
    assert d.instance_seed == 2 and d.name == "fly" and d.n_units == 81
    with pytest.raises(HdbenchError, match="instance_seed is for a circuit given by name"):
        reference_circuits.degrade(rodent, "rate-noise", 0.5, instance_seed=1)


@pytest.mark.parametrize("args, message", [
    (("cat", "rate-noise", 0.1), "unknown reference circuit"),
    (("rodent", "blur", 0.1), "unknown degradation 'blur'"),
    (("rodent", "shuffle-weights", 1.5), r"'shuffle-weights' must be a number in \[0, 1\]"),
    (("rodent", "rate-noise", -0.1), "level of 'rate-noise'"),
    (("rodent", "rate-noise", "high"), "level of 'rate-noise'"),
    ((np.zeros(3), "rate-noise", 0.1), "needs a reference circuit or its name"),
])
def test_bad_arguments_are_clear_errors(args, message):
    with pytest.raises(HdbenchError, match=message):
        reference_circuits.degrade(*args)
    with pytest.raises(HdbenchError, match="seed must be an integer"):
        reference_circuits.degrade("rodent", "rate-noise", 0.1, seed=-1)


# -- each kind does what it says ----------------------------------------------------------------

def test_shuffle_keeps_each_cells_inputs_per_population_and_nests(rodent):
    W = rodent.recurrent_weights()
    pops = rodent._parts.populations
    low = shuffle_inputs(W, pops, 0.3, np.random.default_rng(0))
    high = shuffle_inputs(W, pops, 0.6, np.random.default_rng(0))
    for target in pops:
        for source in pops:
            for a, b in ((W, low), (W, high)):
                np.testing.assert_allclose(np.sort(a[target.units, source.units], axis=1),
                                           np.sort(b[target.units, source.units], axis=1))
    moved_low, moved_high = low != W, high != W
    assert not np.any(moved_low & ~moved_high | (moved_low & (high == W)))
    assert 0.25 < moved_low[:128, :128].mean() < 0.35
    assert 0.55 < moved_high[:128, :128].mean() < 0.65


def test_weight_noise_keeps_signs_and_zeros(rodent):
    W = rodent.recurrent_weights()
    Wn = reference_circuits.degrade(rodent, "weight-noise", 0.5, seed=2).recurrent_weights()
    np.testing.assert_array_equal(np.sign(Wn), np.sign(W))
    assert not np.allclose(Wn, W)


def test_rate_noise_has_the_requested_snr(rodent, trials, intact):
    d = reference_circuits.degrade(rodent, "rate-noise", 0.5, seed=1)
    act = d.simulate(trials, seed=0)
    noise = (act.rates - intact.rates).reshape(-1, rodent.n_units)
    sd = intact.rates.reshape(-1, rodent.n_units).std(axis=0)
    np.testing.assert_allclose(noise.std(axis=0), 0.5 * sd, rtol=0.05)
    np.testing.assert_array_equal(d.simulate(trials, seed=0).rates, act.rates)  # fixed seed
    assert not np.array_equal(d.simulate(trials, seed=1).rates, act.rates)
    # outputs are read from the noisy rates by the circuit's decoder
    vec = act.rates.astype(np.float64) @ rodent.decoder_weights()
    np.testing.assert_allclose(act.outputs, vec / np.linalg.norm(vec, axis=-1, keepdims=True),
                               atol=1e-5)


def test_silenced_units_report_zero(rodent, trials):
    adn = tuple(range(128, 192))
    for kind in ("rate-noise", "tuning-scatter", "heading-remap"):
        d = reference_circuits.degrade(rodent, kind, 1.0)
        act = d.simulate(trials.inputs[:2, :60], silence=Silence(units=adn, start=20, stop=40))
        assert np.all(act.rates[:, 20:40, 128:] == 0)
        assert np.any(act.rates[:, :20, 128:] != 0)


def test_tuning_scatter_blends_with_a_partner_of_the_same_population(rodent, trials, intact):
    partner = derangement(rodent._parts.populations, rodent.n_units, np.random.default_rng(0))
    assert np.all(partner != np.arange(rodent.n_units))
    for pop in rodent._parts.populations:
        assert set(partner[pop.units]) == set(range(pop.start, pop.stop))
    d = reference_circuits.degrade(rodent, "tuning-scatter", 1.0, seed=0)
    act = d.simulate(trials)
    p = d._partner
    np.testing.assert_allclose(act.rates, 0.5 * (intact.rates + intact.rates[..., p]), atol=1e-6)
    states = torch.as_tensor(intact.preactivations[:, -1])
    np.testing.assert_allclose(d.state_rates(states).numpy(), act.rates[:, -1], atol=1e-6)


def test_time_constants_slow_the_bump_by_one_plus_level(rodent):
    d = reference_circuits.degrade(rodent, "time-constants", 1.0)
    speed = measure.bump_velocity(d, [200.0], duration_s=2.0)[0]
    assert speed == pytest.approx(100.0, rel=0.05)
    assert measure.drift_deg_per_s(d, duration_s=5.0, n_starts=4)["max"] < 1.0  # same attractor


def test_fly_degradations_stay_finite():
    fly = reference_circuits.load("fly", noise_std=0.0)
    x = make_trials("fly", 2, seed=[9, 1]).inputs[:, :200]
    for kind in KINDS:
        level = 1.0
        act = reference_circuits.degrade(fly, kind, level).simulate(x)
        assert np.all(np.isfinite(act.rates)), kind


def test_remap_heading_reads_each_tuning_curve_through_its_permutation():
    """Rates that are exactly a function of the heading bin come out as that function of the
    permuted bin; residuals around the curve are kept; other units are untouched."""
    rng = np.random.default_rng(0)
    n_bins, n_units = 12, 4
    heading = rng.uniform(0, 2 * np.pi, (50, 40))
    bins = np.floor(heading / (2 * np.pi) * n_bins).astype(int)
    curves = rng.uniform(1, 5, (n_units, n_bins))
    residual = rng.normal(0, 0.1, (50, 40, n_units))
    rates = np.stack([curves[i][bins] for i in range(n_units)], axis=-1) + residual
    maps = np.stack([rng.permutation(n_bins) for _ in range(n_units)])
    out = remap_heading(rates, heading, np.array([1, 3]), maps)
    np.testing.assert_array_equal(out[..., [0, 2]], rates[..., [0, 2]])
    for i in (1, 3):
        fitted = np.array([rates[..., i][bins == b].mean() for b in range(n_bins)])
        np.testing.assert_allclose(out[..., i], fitted[maps[i]][bins] + residual[..., i]
                                   - (fitted - curves[i])[bins], atol=1e-9)


def test_heading_remap_nests_units_and_breaks_the_population_ring(rodent, trials, intact):
    """The remapped units grow in nested sets; each keeps its rate distribution; the
    population geometry over heading (correlation of the condition-mean distance matrices
    with the intact circuit's) falls monotonically, to near zero at level 1."""
    from scipy.spatial.distance import pdist

    def rdm(rates):
        bins = np.floor(np.mod(trials.heading, 2 * np.pi) / (2 * np.pi) * 24).astype(int)
        flat, b = rates.reshape(-1, rates.shape[-1]), bins.reshape(-1)
        return pdist(np.stack([flat[b == k].mean(axis=0) for k in range(24)]))

    sets, geometry = [], []
    for level in LEVELS["heading-remap"]:
        d = reference_circuits.degrade(rodent, "heading-remap", level, seed=4)
        sets.append(set(d._remapped) if level else set())
        geometry.append(np.corrcoef(rdm(intact.rates), rdm(d.simulate(trials).rates))[0, 1])
    assert all(a <= b for a, b in zip(sets, sets[1:], strict=False))
    assert len(sets[-1]) == rodent.n_units
    assert geometry[0] == pytest.approx(1.0)
    assert spearmanr(LEVELS["heading-remap"], geometry)[0] == pytest.approx(-1.0)
    assert geometry[-1] < 0.3
    d = reference_circuits.degrade(rodent, "heading-remap", 1.0, seed=4)
    act = d.simulate(trials)
    # each unit's tuning curve keeps its values, in another order (up to the rectification)
    bins = np.floor(np.mod(trials.heading, 2 * np.pi) / (2 * np.pi) * 36).astype(int).ravel()
    seen = np.unique(bins)

    def curves(rates):
        flat = rates.reshape(-1, rodent.n_units)
        return np.stack([flat[bins == b].mean(axis=0) for b in seen])

    before, after = curves(intact.rates), curves(act.rates)
    active = before.max(axis=0) > 0.1
    error = np.abs(np.sort(after, axis=0) - np.sort(before, axis=0)).max(axis=0)
    assert np.median(error[active] / before.max(axis=0)[active]) < 0.1
    assert np.median(np.abs(after - before).max(axis=0)[active]
                     / before.max(axis=0)[active]) > 0.5
    states = torch.as_tensor(intact.preactivations[:, -1])
    np.testing.assert_array_equal(d.state_rates(states).numpy(), torch.relu(states).numpy())
