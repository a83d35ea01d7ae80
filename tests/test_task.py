import math

import numpy as np
import pytest

from hdbench.errors import HdbenchError
from hdbench.task import PRESETS, TaskSpec, decode_heading, make_trials, seed_for


def test_presets_named_in_the_issue():
    assert set(PRESETS) == {"cueva-0.1x", "cueva-1x", "cueva-3x", "rodent", "fly"}
    assert PRESETS["cueva-1x"].phi == 0.8
    assert PRESETS["cueva-3x"].sigma == pytest.approx(0.09)


def test_shapes_cue_and_mask():
    tr = make_trials("cueva-1x", 8, seed=0)
    assert tr.inputs.shape == (8, 500, 3) and tr.targets.shape == (8, 500, 2)
    assert tr.inputs.dtype == np.float32
    assert not tr.mask[:, :10].any() and tr.mask[:, 10:].all()
    theta0 = tr.heading[:, 0]
    np.testing.assert_allclose(tr.inputs[:, :10, 1], np.sin(theta0)[:, None].repeat(10, 1),
                               atol=1e-6)
    np.testing.assert_allclose(tr.inputs[:, :10, 2], np.cos(theta0)[:, None].repeat(10, 1),
                               atol=1e-6)
    assert np.all(tr.inputs[:, 10:, 1:] == 0)
    assert np.all(tr.av[:, :10] == 0)
    np.testing.assert_allclose(tr.heading[:, :10], theta0[:, None].repeat(10, 1))


def test_heading_integrates_av_on_the_same_step_and_targets_match():
    tr = make_trials("cueva-3x", 4, seed=1)
    step = np.angle(np.exp(1j * (tr.heading[:, 1:] - tr.heading[:, :-1])))
    np.testing.assert_allclose(step, tr.av[:, 1:], atol=1e-9)
    np.testing.assert_allclose(tr.targets[..., 0], np.sin(tr.heading), atol=1e-6)
    np.testing.assert_allclose(decode_heading(tr.targets), tr.heading, atol=1e-5)


def test_same_seed_same_trials_and_streams_are_disjoint():
    a = make_trials("cueva-1x", 5, seed_for(1, 0, 7))
    b = make_trials("cueva-1x", 5, seed_for(1, 0, 7))
    c = make_trials("cueva-1x", 5, seed_for(3, 0, 7))
    np.testing.assert_array_equal(a.inputs, b.inputs)
    assert not np.allclose(a.inputs, c.inputs)


def test_av_is_the_reset_ar1_process_of_the_spec():
    """AV follows av_t = σ ε_t + φ av_{t−1}, reset to exactly 0 on frozen steps (+0.0, not −0.0),
    with ε the first normal draws after θ0 (the stream the trials of every past run used)."""
    spec = PRESETS["cueva-1x"]
    tr = make_trials(spec, 6, seed=11)
    rng = np.random.default_rng(11)
    rng.uniform(size=6)
    eps = rng.standard_normal((6, spec.n_steps))
    frozen = tr.av == 0
    want, previous = np.zeros_like(tr.av), np.zeros(6)
    for t in range(spec.n_steps):
        previous = np.where(frozen[:, t], 0.0, spec.sigma * eps[:, t] + spec.phi * previous)
        want[:, t] = previous
    assert want.tobytes() == tr.av.tobytes()
    assert not np.signbit(tr.av[frozen]).any()


def test_zero_av_stretches_only_in_first_half():
    tr = make_trials("cueva-1x", 200, seed=2)
    post = tr.av[:, 10:]
    zero_first = (post[:100] == 0).mean()
    zero_second = (post[100:] == 0).mean()
    assert zero_second == 0.0
    # papers.md §1.2: about 34 % of post-cue steps in the first-half trials
    assert 0.25 < zero_first < 0.42


@pytest.mark.parametrize("name", list(PRESETS))
def test_generated_av_statistics_match_the_spec(name):
    spec = PRESETS[name].replace(zero_av_epochs=False, n_steps=2000)
    tr = make_trials(spec, 400, seed=3)
    av = tr.av[:, 100:]  # past the start-up transient
    assert av.std() == pytest.approx(spec.stationary_sd, rel=0.03)
    lag1 = np.mean(av[:, 1:] * av[:, :-1]) / np.mean(av * av)
    lag5 = np.mean(av[:, 5:] * av[:, :-5]) / np.mean(av * av)
    assert lag1 == pytest.approx(spec.phi, abs=0.01)
    assert lag5 == pytest.approx(spec.phi**5, abs=0.02)


def test_biology_presets_are_calibrated():
    rodent, fly = PRESETS["rodent"], PRESETS["fly"]
    assert rodent.dt == fly.dt == 0.025
    assert rodent.correlation_time == pytest.approx(0.2)
    assert fly.correlation_time == pytest.approx(0.128)
    assert math.degrees(rodent.stationary_sd / rodent.dt) == pytest.approx(100.0)
    assert math.degrees(fly.stationary_sd / fly.dt) == pytest.approx(54.0)


def test_cueva_stationary_sd_matches_papers_table():
    assert PRESETS["cueva-1x"].stationary_sd == pytest.approx(0.05, abs=1e-3)


@pytest.mark.parametrize("bad", [dict(phi=1.0), dict(sigma=-1), dict(cue_steps=500),
                                 dict(dt=0)])
def test_bad_specs_are_rejected(bad):
    with pytest.raises(HdbenchError):
        TaskSpec(**bad)


def test_bad_calls_are_rejected():
    with pytest.raises(HdbenchError, match="known presets"):
        make_trials("cueva-2x", 3, seed=0)
    with pytest.raises(HdbenchError, match="positive integer"):
        make_trials("cueva-1x", 0, seed=0)
    with pytest.raises(HdbenchError, match="seed"):
        make_trials("cueva-1x", 3, seed=None)
