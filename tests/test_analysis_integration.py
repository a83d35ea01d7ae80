"""The decoded-vs-true heading gain and the refusal to compare non-integrating networks."""

import numpy as np
import pytest

from hdbench.analysis import INTEGRATION_RANGE, integration_gain, integration_refusal
from hdbench.errors import HdbenchError
from hdbench.models import build
from hdbench.task import make_trials
from tests.fakes import FakeRing


@pytest.fixture(scope="module")
def trials():
    return make_trials("cueva-1x", 200, seed=[5, 7])


@pytest.mark.parametrize("gain", [1.0, 0.5, 1.1])
def test_gain_of_integrators_with_a_known_gain(trials, gain):
    ring = FakeRing()
    ring.gain = gain
    out = integration_gain(ring.simulate(trials), trials, n_boot=300)
    assert out["gain"] == pytest.approx(gain, abs=1e-6)
    assert out["gain_lo"] <= out["gain"] <= out["gain_hi"]
    assert out["integrates"] is (INTEGRATION_RANGE[0] <= gain <= INTEGRATION_RANGE[1])
    assert out["n_trials"] == 200


def test_a_network_that_ignores_av_has_gain_near_zero(trials):
    out = integration_gain(build("ctrnn", n_units=16, init_seed=0).simulate(trials), trials)
    assert abs(out["gain"]) < 0.2 and not out["integrates"]
    assert out["gain_lo"] <= out["gain"] <= out["gain_hi"]


def test_refusal_is_one_line_and_names_the_gain():
    assert integration_refusal(1.0) is None and integration_refusal(0.8) is None
    reason = integration_refusal(0.26, "ctrnn-cueva-0p1x seed 1")
    assert "\n" not in reason and "0.26" in reason and "ctrnn-cueva-0p1x seed 1" in reason
    assert "not compared" in reason
    assert integration_refusal(float("nan")) is not None


def test_bad_input_gets_a_clear_error(trials):
    with pytest.raises(HdbenchError, match="AV"):
        integration_gain(FakeRing().simulate(trials.inputs))  # raw inputs: no AV attached
    two = make_trials("cueva-1x", 2, seed=0)
    with pytest.raises(HdbenchError, match="3 trials"):
        integration_gain(FakeRing().simulate(two), two, n_boot=0)
    with pytest.raises(HdbenchError, match="skip_steps"):
        integration_gain(FakeRing().simulate(trials), trials, skip_steps=10_000)
    assert np.isnan(integration_gain(FakeRing().simulate(trials), trials, n_boot=0)["gain_lo"])
