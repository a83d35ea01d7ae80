"""The whole-analysis runner and ``hdbench analyze``."""

import json

import numpy as np
import pytest
import torch

from hdbench.analysis import analyze, format_summary
from hdbench.cli import main
from hdbench.training import checkpoint
from tests.ring_system import SPEC, ring_ctrnn


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    """A run directory holding the hand-built ring as a finished CTRNN run."""
    run = tmp_path_factory.mktemp("ring-run")
    net = ring_ctrnn()
    options = {k: net.config[k] for k in ("n_units", "activation", "alpha")}
    checkpoint.save({"kind": "model", "model": "ctrnn", "model_options": json.dumps(options),
                     "state": net.state_dict(), "config": {}}, run / "model.pt")
    (run / "config.json").write_text(json.dumps({"config": {"task": "cueva-0.1x"}}))
    return run


def test_analyze_a_system_object():
    result = analyze(ring_ctrnn(), spec=SPEC, n_trials=48, extras=False,
                     thresholds={"kappa": 0.05})
    counts = result.to_dict()["class_counts"]
    assert counts == {"inactive": 0, "compass": 32, "shifter_cw": 32, "shifter_ccw": 32,
                      "other": 0}
    d = result.to_dict()
    assert d["connectivity"]["offsets_opposite"]
    assert d["connectivity"]["shifter_offsets_deg"]["shifter_ccw"] == pytest.approx(30, abs=10)
    assert all(v for v in d["silencing_signature"].values())
    assert d["slow_points"]["ring_coverage"] > 0.8
    json.dumps(d)  # JSON-clean
    text = format_summary(result)
    assert "shifter offsets onto compass" in text and "ring coverage" in text


def test_cli_analyze_json_on_a_run_directory(ring_run, capsys):
    code = main(["analyze", str(ring_run), "--trials", "32", "--quick", "--json",
                 "--kappa", "0.05"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["task"] == "cueva-0.1x" and out["n_units"] == 96
    assert out["thresholds"]["kappa"] == 0.05
    assert out["class_counts"]["shifter_cw"] == 32
    assert out["timings_s"]["total"] > 0


def test_cli_analyze_text_with_extras(ring_run, capsys):
    torch.manual_seed(0)
    assert main(["analyze", str(ring_run), "--trials", "24", "--kappa", "0.05"]) == 0
    text = capsys.readouterr().out
    for piece in ("cell types", "silencing", "slow points", "zero-AV holds", "NE:"):
        assert piece in text


@pytest.mark.parametrize("args, message", [
    (["analyze", "/nonexistent/run"], "neither a run directory nor a reference circuit"),
    (["analyze", "rodent", "--trials", "0"], "positive integer"),
    (["analyze", "rodent", "--kappa", "-1"], ">= 0"),
])
def test_bad_input_gets_a_one_line_error(args, message, capsys):
    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_sensitivity_is_part_of_the_result():
    result = analyze(ring_ctrnn(), spec=SPEC, n_trials=16, extras=False)
    sens = result.sensitivity
    assert set(sens["threshold"]) == {"inactive_rate", "min_r", "kappa"}
    assert np.allclose(sens[["inactive", "compass", "shifter_cw", "shifter_ccw",
                             "other"]].sum(axis=1), 1.0)
