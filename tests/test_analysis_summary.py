"""The whole-analysis runner and ``hdbench analyze``."""

import json

import numpy as np
import pytest
import torch

from hdbench.analysis import analyze, compare_cell_types_across, format_comparison, format_summary
from hdbench.cli import main
from hdbench.models import build
from hdbench.training import checkpoint
from tests.ring_system import SPEC, ring_ctrnn


def _save_run(run, net, task="cueva-0.1x"):
    options = {k: net.config[k] for k in ("n_units", "activation", "alpha")}
    checkpoint.save({"kind": "model", "model": "ctrnn", "model_options": json.dumps(options),
                     "state": net.state_dict(), "config": {}}, run / "model.pt")
    (run / "config.json").write_text(json.dumps({"config": {"task": task}}))
    return run


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    """A run directory holding the hand-built ring as a finished CTRNN run."""
    return _save_run(tmp_path_factory.mktemp("ring-run"), ring_ctrnn())


def test_analyze_a_system_object():
    result = analyze(ring_ctrnn(), spec=SPEC, n_trials=48, extras=False,
                     thresholds={"kappa": 0.05}, n_draws=10, n_boot=200)
    counts = result.to_dict()["class_counts"]
    assert counts == {"inactive": 0, "compass": 32, "shifter_cw": 32, "shifter_ccw": 32,
                      "other": 0}
    d = result.to_dict()
    assert d["integration"]["integrates"] and d["integration"]["refusal"] is None
    assert d["integration"]["gain"] == pytest.approx(1.0, abs=0.1)
    conn = d["connectivity"]
    assert conn["offsets_opposite"] and conn["offsets_resolved"]
    assert conn["shifter_offsets_deg"]["shifter_ccw"] == pytest.approx(30, abs=3)
    lo, hi = conn["shifter_intervals_deg"]["shifter_cw"]
    assert lo < -30 < hi < 0
    sig = d["silencing_signature"]
    assert sig["cw_off_drifts_ccw"] and sig["ccw_off_drifts_cw"]
    assert sig["both_off_stops_integration"] and sig["compass_off_loses_bump"]
    assert d["silencing_signature_uncontrolled"]["cw_off_drifts_ccw"]
    assert d["continuum"]["av_asymmetry"]["gmm_best"] == 3
    assert [r["kappa"] for r in d["continuum"]["kappa_table"]] == [0.01, 0.02, 0.03, 0.05, 0.1,
                                                                   0.2]
    rows = {r["group"]: r for r in d["silencing"]}
    assert rows["shifter_cw"]["drift_deg_s"] > rows["shifter_cw"]["ctrl_drift_p95_deg_s"]
    assert d["slow_points"]["ring_coverage"] > 0.8
    json.dumps(d)  # JSON-clean
    text = format_summary(result)
    for piece in ("integration: decoded-vs-true heading gain", "continuum of the 96 HD-tuned",
                  "shifter offsets onto compass", "random 32", "yes, specific",
                  "ring coverage", "(argmax, secondary)"):
        assert piece in text, piece


def test_cell_types_of_a_network_that_does_not_integrate_are_not_compared():
    untrained = build("ctrnn", n_units=96, init_seed=0)
    results = [analyze(net, spec=SPEC, n_trials=24, extras=False, n_draws=2, n_boot=50)
               for net in (ring_ctrnn(), untrained)]
    table = compare_cell_types_across(results)
    assert list(table["compared"]) == [True, False]
    assert np.isnan(table.loc[1, "compass"]) and table.loc[0, "compass"] > 0
    assert "does not integrate" in table.loc[1, "reason"]
    text = format_comparison(table)
    assert "refused: CTRNN does not integrate" in text


def test_cli_analyze_json_on_a_run_directory(ring_run, capsys):
    code = main(["analyze", str(ring_run), "--trials", "32", "--quick", "--json",
                 "--kappa", "0.05", "--draws", "2", "--boot", "50"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["task"] == "cueva-0.1x" and out["n_units"] == 96
    assert out["thresholds"]["kappa"] == 0.05
    assert out["class_counts"]["shifter_cw"] == 32
    assert out["timings_s"]["total"] > 0


def test_cli_analyze_text_with_extras(ring_run, capsys):
    torch.manual_seed(0)
    assert main(["analyze", str(ring_run), "--trials", "24", "--kappa", "0.05",
                 "--draws", "3", "--boot", "100"]) == 0
    text = capsys.readouterr().out
    for piece in ("cell types", "silencing", "slow points", "zero-AV holds", "NE:",
                  "random 32"):
        assert piece in text


def test_cli_analyze_several_runs_compares_their_cell_types(ring_run, tmp_path, capsys):
    (tmp_path / "untrained").mkdir()
    flat = _save_run(tmp_path / "untrained", build("ctrnn", n_units=96, init_seed=1))
    args = ["analyze", str(ring_run), str(flat), "--trials", "16", "--quick", "--draws", "2",
            "--boot", "50", "--kappa", "0.05"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "cell-type fractions (%, thresholded)" in text and "refused:" in text
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["systems"]) == 2
    assert [r["compared"] for r in out["cell_type_comparison"]] == [True, False]


@pytest.mark.parametrize("args, message", [
    (["analyze", "/nonexistent/run"], "is not a reference circuit"),
    (["analyze", "tests/fakes.py:make_ring"], "has no task of its own"),
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
    result = analyze(ring_ctrnn(), spec=SPEC, n_trials=16, extras=False, n_draws=2, n_boot=50)
    sens = result.sensitivity
    assert set(sens["threshold"]) == {"inactive_rate", "min_r", "kappa"}
    assert np.allclose(sens[["inactive", "compass", "shifter_cw", "shifter_ccw",
                             "other"]].sum(axis=1), 1.0)
