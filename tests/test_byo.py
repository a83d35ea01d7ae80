"""Bring your own model: entry points, model files, exported trials and recorded activity.

Scoring runs against the 8-unit fake ring reference (tests/fakes.py) under the quick protocol,
so that a whole `hdbench score` takes a few seconds.
"""

import json
import math
import textwrap
from pathlib import Path

import numpy as np
import pytest

from hdbench import models
from hdbench.byo import activity_subject, model_subject, score
from hdbench.cli import main
from hdbench.engine import Job, run_jobs
from hdbench.errors import HdbenchError, NotComputableError
from hdbench.leaderboard import run_leaderboard
from hdbench.scoring import QUICK_PROTOCOL
from hdbench.scoring.external import (
    TRIALS_FORMAT,
    ActivitySubject,
    ExternalSubject,
    read_submission,
)
from hdbench.scoring.task_benchmarks import TASK_BENCHMARKS
from hdbench.user_models import parse_model_spec
from tests.fakes import FakeRing

FAKE = "fake=tests.fakes:make_ring"
NEEDS_SIMULATION = {"fake.task.generalisation-ne", "fake.task.noise-ne",
                    "fake.dynamics.ring-coverage", "fake.dynamics.silencing"}
RING_MODEL = """
from tests.ring_system import ring_ctrnn


def make():
    return ring_ctrnn(8)
"""


# -- entry points ---------------------------------------------------------------------------------

def _fake_distribution(root, entry_points: str, module: str = "") -> None:
    """An installed distribution 'toy-plugin' in ``root`` (put it on sys.path)."""
    info = root / "toy_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[hdbench.models]\n{entry_points}\n")
    if module:
        (root / "toy_plugin.py").write_text(textwrap.dedent(module))


def test_entry_points_of_an_installed_distribution_are_built_lazily(tmp_path, monkeypatch):
    _fake_distribution(tmp_path, "toy = toy_plugin:make\nring = tests.fakes:make_ring\n"
                                 "ctrnn = toy_plugin:make",
                       module="""
                       from tests.fakes import FakeRing

                       def make(gain_seed=0):
                           return FakeRing(gain_seed)
                       """)
    assert "toy" not in models.available()
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(UserWarning, match="shadows the built-in"):
        names = models.available()
    assert {"toy", "ring", "ctrnn", "gru"} <= set(names) and names == sorted(names)
    import sys

    assert "toy_plugin" not in sys.modules  # listing imports nothing
    with pytest.warns(UserWarning):
        system = models.build("toy", gain_seed=2)
        assert isinstance(system, FakeRing) and system.gain == pytest.approx(1.04)
        assert isinstance(models.build("ctrnn", n_units=4), models.CTRNN)  # built-in wins
        with pytest.raises(HdbenchError, match="bad options for model 'toy'"):
            models.build("toy", units=3)


def test_an_installed_plugin_is_scored_by_name(tmp_path, monkeypatch, capsys):
    module = """
             from tests.fakes import FakeRing

             def make():
                 return FakeRing(2)
             """
    _fake_distribution(tmp_path / "site", "toy = toy_plugin_b:make", module="")
    (tmp_path / "site" / "toy_plugin_b.py").write_text(textwrap.dedent(module))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    from hdbench.scoring.external import PluginSubject

    subject = PluginSubject.from_name("toy")
    assert subject.distribution == "toy-plugin" and subject.version == "0.1"
    assert main(["score", "--model", "toy", "--quick", "--reference", FAKE, "--quiet",
                 "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]) == 0
    record = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert record["model"] == "toy" and record["subject"]["kind"] == "plugin"
    assert any(r["benchmark"] == "fake.task.test-ne" and r["raw"] < 0.01
               for r in record["scores"])
    (tmp_path / "site" / "toy_plugin_b.py").write_text(textwrap.dedent(module) + "# v2\n")
    assert PluginSubject.from_name("toy").identity() == subject.identity()  # same behaviour
    import sys

    sys.modules.pop("toy_plugin_b", None)
    (tmp_path / "site" / "toy_plugin_b.py").write_text(
        textwrap.dedent(module).replace("FakeRing(2)", "FakeRing(3)"))
    assert PluginSubject.from_name("toy").identity() != subject.identity()
    with pytest.raises(HdbenchError, match="behaves differently"):
        subject.load()
    capsys.readouterr()
    assert main(["score", "--model", "nosuchplugin", "--quick", "--reference", FAKE]) == 2
    assert "installed hdbench.models plugin (toy); got 'nosuchplugin'" in \
        capsys.readouterr().err


class _EntryPoint:
    """Stands in for importlib.metadata.EntryPoint."""

    def __init__(self, name, value, target=None, error=None):
        self.name, self.value, self._target, self._error = name, value, target, error

    def load(self):
        if self._error:
            raise self._error
        return self._target


def test_broken_and_non_system_plugins_get_clear_errors(monkeypatch):
    points = [_EntryPoint("broken", "nowhere:make", error=ImportError("No module 'nowhere'")),
              _EntryPoint("number", "pkg:answer", target=lambda: 42),
              _EntryPoint("ring", "tests.fakes:make_ring", target=FakeRing)]
    calls = []

    def entry_points(group):
        calls.append(group)
        return points

    monkeypatch.setattr(models.importlib.metadata, "entry_points", entry_points)
    assert models.available() == ["broken", "ctrnn", "gru", "lstm", "number", "ring",
                                  "vanilla"]
    assert calls == [models.ENTRY_POINT_GROUP]
    with pytest.raises(HdbenchError, match="cannot load model 'broken'.*ImportError"):
        models.build("broken")
    with pytest.raises(HdbenchError, match="without a simulate"):
        models.build("number")
    assert models.build("ring", instance_seed=1).gain == pytest.approx(1.02)
    with pytest.raises(HdbenchError, match="unknown model 'nope'; known models: broken"):
        models.build("nope")


# -- model files ----------------------------------------------------------------------------------

def test_model_spec_parsing():
    assert parse_model_spec("dir/my.model.py:make") == (None, Path("dir/my.model.py"), "make")
    assert parse_model_spec("mine=a/b.py:f")[0] == "mine"
    for bad in ("a/b.py", "a/b.txt:f", "a/b.py:1f", "a/b.py:"):
        with pytest.raises(HdbenchError, match=r"\[NAME=\]path/to/file.py:factory"):
            parse_model_spec(bad)


def test_a_model_file_is_identified_by_its_behaviour(tmp_path):
    first = tmp_path / "one" / "net.py"
    first.parent.mkdir()
    first.write_text(RING_MODEL)
    copy = tmp_path / "copy.py"
    copy.write_text(RING_MODEL)
    a, b = ExternalSubject.from_file(first, "make"), ExternalSubject.from_file(copy, "make")
    assert a.identity() == b.identity()  # same behaviour elsewhere: same scores
    first.write_text(RING_MODEL + "\n# a comment\n")
    assert ExternalSubject.from_file(first, "make").identity() == a.identity()
    # retrained in place: same file name and factory, other weights
    first.write_text(RING_MODEL.replace("ring_ctrnn(8)", "ring_ctrnn(8, k=0.05)"))
    edited = ExternalSubject.from_file(first, "make")
    assert edited.identity() != a.identity()
    with pytest.raises(HdbenchError, match="behaves differently"):
        a.load()
    assert edited.load().n_units == 24


def test_a_model_loading_new_weights_from_disk_is_not_given_its_old_scores(tmp_path):
    """The file stays the same; the weights it loads change (a user retraining in place)."""
    weights = tmp_path / "weights.npy"
    model = tmp_path / "net.py"
    model.write_text(textwrap.dedent(f"""
        import numpy as np
        from tests.ring_system import ring_ctrnn

        def make():
            net = ring_ctrnn(8)
            scale = float(np.load({str(weights)!r}))
            net.V.data *= scale
            return net
        """))
    np.save(weights, np.array(1.0))
    common = ["--quick", "--reference", FAKE, "--cache", str(tmp_path / "cache"), "--quiet",
              "--out", str(tmp_path / "out")]
    assert main(["score", "--model", f"{model}:make", *common]) == 0
    first = json.loads((tmp_path / "out" / "scores.json").read_text())
    np.save(weights, np.array(-1.0))  # the readout flipped: a much worse heading estimate
    assert main(["score", "--model", f"{model}:make", *common]) == 0
    second = json.loads((tmp_path / "out" / "scores.json").read_text())
    ne = {r["benchmark"]: r["raw"] for r in first["scores"]}["fake.task.test-ne"]
    ne2 = {r["benchmark"]: r["raw"] for r in second["scores"]}["fake.task.test-ne"]
    assert abs(ne2 - ne) > 0.1  # rescored: the stored score of the old weights is not reused


def test_model_file_errors_are_one_line(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text("def make():\n    return 3\n\ndef boom():\n    raise KeyError('x')\n"
                    "import nonexistent_module_xyz\n")
    with pytest.raises(HdbenchError, match="cannot import model file .*nonexistent"):
        model_subject(f"{path}:make")
    path.write_text("def make():\n    return 3\n\ndef boom():\n    raise KeyError('x')\n")
    with pytest.raises(HdbenchError, match="returned a int without a simulate"):
        model_subject(f"{path}:make")
    with pytest.raises(HdbenchError, match=r"bad.py:boom\(\) raised KeyError"):
        model_subject(f"{path}:boom")
    with pytest.raises(HdbenchError, match="has no callable 'nothing'"):
        model_subject(f"{path}:nothing")
    with pytest.raises(HdbenchError, match="not found"):
        model_subject(f"{tmp_path / 'missing.py'}:make")


def test_a_minimal_system_is_adapted(tmp_path):
    """simulate(inputs) alone: silencing and connectivity become not computable."""
    path = tmp_path / "minimal.py"
    path.write_text(textwrap.dedent("""
        from tests.fakes import FakeRing

        class Minimal:
            n_units = 8

            def __init__(self):
                self._ring = FakeRing(0)

            def simulate(self, inputs):
                return self._ring.simulate(inputs)

        def make():
            return Minimal()
        """))
    _, subject = model_subject(f"{path}:make")
    system = subject.load()
    from hdbench.task import make_trials

    trials = make_trials("cueva-1x", 2, seed=0)
    assert system.simulate(trials, seed=3).rates.shape == (2, 500, 8)
    with pytest.raises(NotComputableError, match="silence"):
        system.simulate(trials, silence=object())
    with pytest.raises(NotComputableError, match="recurrent_weights"):
        system.recurrent_weights()


def load_and_run(subject) -> tuple:
    """Engine job: build the subject's system in a worker process and simulate."""
    from hdbench.task import make_trials

    system = subject.load()
    return system.simulate(make_trials("cueva-1x", 2, seed=0)).rates.shape, type(system).__name__


def test_model_file_subjects_load_in_worker_processes_and_join_the_leaderboard(tmp_path):
    path = tmp_path / "ringnet.py"
    path.write_text(RING_MODEL)
    model_id, subject = model_subject(f"{path}:make")
    assert model_id == "ringnet"
    [result] = run_jobs([Job("load", load_and_run, subject)], n_jobs=2, progress=False)
    assert result.ok, result.error
    assert tuple(result.value[0]) == (2, 500, 24) and result.value[1] == "CTRNN"

    options = dict(zoo=(), references=[FAKE], benchmarks=TASK_BENCHMARKS, quick=True,
                   out_dir=tmp_path / "out", store=tmp_path / "cache", progress=False,
                   log=lambda line: None)
    board = run_leaderboard(subjects=[(model_id, subject)], **options)
    assert not board.failures
    rows = board.table[board.table["model"] == "ringnet"]
    assert len(rows) == 3 and rows["raw"].notna().all()
    assert "ringnet" in (tmp_path / "out" / "leaderboard.md").read_text()
    again = run_leaderboard(subjects=[(model_id, subject)], **options)
    assert again.report.results == []  # cached like any other subject's scores
    with pytest.raises(HdbenchError, match="model ids must be unique"):
        run_leaderboard(subjects=[("x", subject), ("x", subject)], **options)


# -- export-trials and score --activity -----------------------------------------------------------

@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The quick protocol's trials for the fake reference, via the CLI."""
    path = tmp_path_factory.mktemp("export") / "trials.npz"
    assert main(["export-trials", "--out", str(path), "--quick", "--reference", FAKE]) == 0
    return path


def test_export_trials_layout_and_provenance(exported):
    from hdbench.scoring.bundle import TRIAL_SETS, task_for_reference

    with np.load(exported, allow_pickle=False) as data:
        files = set(data.files)
        assert {"inputs", "heading", "av", "targets", "mask", "reference", "av_bin_edges",
                "n_hd_bins", "format", "format_version", "provenance"} <= files
        assert str(data["format"]) == TRIALS_FORMAT and int(data["format_version"]) == 1
        inputs = data["inputs"]
        assert inputs.shape == (32, 500, 3) and inputs.dtype == np.float32
        assert data["heading"].shape == data["av"].shape == (32, 500)
        assert set(data["reference"]) == {"fake"}
        info = json.loads(str(data["provenance"]))
        expected = TRIAL_SETS["test"](task_for_reference("fake", FakeRing()), QUICK_PROTOCOL)
        np.testing.assert_array_equal(inputs, expected.inputs)
        np.testing.assert_array_equal(data["av"], expected.av)
    assert info["protocol"] == {"n_trials": 32, "seed": 0} and info["hdbench_version"]
    assert info["blocks"][0]["reference"] == "fake" and info["n_trials"] == 32


def _simulate(system, exported, path, **extra):
    with np.load(exported) as data:
        activity = system.simulate(data["inputs"])
    arrays = {"rates": activity.rates, "outputs": activity.outputs,
              "W": system.recurrent_weights()}
    arrays.update(extra)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def test_round_trip_activity_scores_equal_model_file_scores(tmp_path, exported, capsys):
    """Export, simulate the ring network on the trials, score the npz and the model file."""
    from tests.ring_system import ring_ctrnn

    model = tmp_path / "ringnet.py"
    model.write_text(RING_MODEL)
    npz = _simulate(ring_ctrnn(8), exported, tmp_path / "ringnet_rates.npz")
    common = ["--quick", "--reference", FAKE, "--cache", str(tmp_path / "cache"), "--quiet"]
    assert main(["score", "--model", f"{model}:make", "--out", str(tmp_path / "m"),
                 *common]) == 0
    assert main(["score", "--activity", str(npz), "--name", "ringnet-rates",
                 "--out", str(tmp_path / "a"), *common]) == 0
    printed = capsys.readouterr().out
    assert "ringnet-rates" in printed and "not computable from activity" in printed

    by_model = json.loads((tmp_path / "m" / "scores.json").read_text())
    by_activity = json.loads((tmp_path / "a" / "scores.json").read_text())
    model_raw = {r["benchmark"]: r["raw"] for r in by_model["scores"]}
    activity_rows = {r["benchmark"]: r for r in by_activity["scores"]}
    assert set(model_raw) == set(activity_rows)
    not_computable = {b for b, r in activity_rows.items()
                      if str(r["note"]).startswith("not computable from activity")}
    assert not_computable == NEEDS_SIMULATION
    for bench in not_computable:  # missing coverage, not a zero
        assert activity_rows[bench]["raw"] is None and activity_rows[bench]["normalised"] is None
    computed = {b: r["raw"] for b, r in activity_rows.items() if r["raw"] is not None}
    assert {"fake.task.test-ne", "fake.representation.procrustes", "fake.tuning.cell-types",
            "fake.connectivity.profile-correlation", "fake.dynamics.dsa"} <= set(computed)
    for bench, value in computed.items():
        assert value == pytest.approx(model_raw[bench], rel=1e-6, abs=1e-9), bench
    overall = {(s["reference"], s["family"]): s for s in by_activity["summary"]}
    assert overall[("fake", "task")]["coverage"] == "1/3"
    assert by_activity["subject"]["kind"] == "activity"
    assert (tmp_path / "a" / "scores.csv").read_text().startswith("model,seed,reference")


def test_activity_without_outputs_or_weights(tmp_path, exported):
    from tests.ring_system import ring_ctrnn

    npz = _simulate(ring_ctrnn(8), exported, tmp_path / "rates_only.npz", outputs=None, W=None)
    model_id, subject = activity_subject(npz, [FAKE], quick=True)
    result = score(model_id, subject, [FAKE], quick=True, store=tmp_path / "cache",
                   progress=False, log=lambda line: None)
    rows = result.table.set_index("benchmark")
    assert rows.loc["fake.task.test-ne", "note"] == \
        "not computable from activity: no outputs submitted"
    assert rows.loc["fake.connectivity.profile-correlation", "note"].startswith(
        "not computable from activity")
    assert rows.loc["fake.tuning.cell-types", "note"] == \
        "not computable from activity: no outputs submitted"  # classified at decoded heading
    assert math.isfinite(rows.loc["fake.representation.procrustes", "raw"])
    assert math.isfinite(rows.loc["fake.dynamics.dsa", "raw"])


# -- malformed submissions ------------------------------------------------------------------------

def _good(**changes):
    rng = np.random.default_rng(0)
    arrays = {"rates": rng.random((32, 500, 6), dtype=np.float32),
              "outputs": rng.random((32, 500, 2), dtype=np.float32),
              "W": rng.standard_normal((6, 6))}
    arrays.update(changes)
    return {k: v for k, v in arrays.items() if v is not None}


def _with_nan(shape, where, value=np.nan):
    array = np.zeros(shape, dtype=np.float32)
    array[where] = value
    return array


MALFORMED = {
    "rates 2-D": (_good(rates=np.zeros((32, 500))), r"rates must be \[trials, time, units\]"),
    "rates 4-D": (_good(rates=np.zeros((32, 500, 6, 1))), r"got shape \(32, 500, 6, 1\)"),
    "no units": (_good(rates=np.zeros((32, 500, 0)), W=None), "rates has no units"),
    "too few trials": (_good(rates=np.zeros((31, 500, 6))), "rates has 31 trials; the "
                                                            "exported trials number 32"),
    "too many steps": (_good(rates=np.zeros((32, 501, 6))), "rates has 501 time steps; the "
                                                            "exported trials have 500"),
    "NaN rates": (_good(rates=_with_nan((32, 500, 6), (3, 17, 2))),
                  r"rates contains 1 NaN or inf values \(first at index \[3, 17, 2\]\)"),
    "inf rates": (_good(rates=_with_nan((32, 500, 6), (0, 0, 0), np.inf)), "NaN or inf"),
    "NaN outputs": (_good(outputs=_with_nan((32, 500, 2), (1, 2, 1))), "outputs contains 1"),
    "outputs shape": (_good(outputs=np.zeros((32, 500, 3))),
                      r"outputs must be \[trials, time, 2\] = \[32, 500, 2\]"),
    "inf W": (_good(W=_with_nan((6, 6), (1, 1), -np.inf)), "W contains 1 NaN or inf"),
    "W not square": (_good(W=np.zeros((6, 5))), r"W must be a square \[units, units\]"),
    "W vs units": (_good(W=np.zeros((5, 5))), "W is 5 x 5 but rates have 6 units"),
    "missing rates": ({"activity": np.zeros((32, 500, 6))},
                      "has no 'rates' array; found: activity"),
    "string rates": (_good(rates=np.array(["a", "b"])), "dtype <U1; expected real numbers"),
    "complex W": (_good(W=np.zeros((6, 6), dtype=complex)), "expected real numbers"),
    "pickled objects": (_good(rates=np.array([{"a": 1}, None], dtype=object)),
                        "'rates' is a pickled object array"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_submissions_get_one_line_errors(tmp_path, case):
    arrays, message = MALFORMED[case]
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(HdbenchError, match=message) as info:
        read_submission(path, n_trials=32, n_steps=500)
    assert "\n" not in str(info.value) and "bad.npz" in str(info.value)


def test_files_that_are_not_npz_archives(tmp_path):
    text = tmp_path / "rates.npz"
    text.write_text("trial,time,unit,rate\n")
    npy = tmp_path / "rates.npy"
    np.save(npy, np.zeros((32, 500, 6)))
    truncated = tmp_path / "cut.npz"
    np.savez(truncated, **_good())
    truncated.write_bytes(truncated.read_bytes()[:5000])
    for path in (text, npy, truncated):
        with pytest.raises(HdbenchError, match="not an .npz archive|cannot be read|not a "
                                               "readable") as info:
            read_submission(path, n_trials=32, n_steps=500)
        assert "\n" not in str(info.value)
    with pytest.raises(HdbenchError, match="not found"):
        read_submission(tmp_path / "nothing.npz", n_trials=32, n_steps=500)


def test_weights_key(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, **_good(W=None, J=np.eye(6)))
    rates, outputs, weights = read_submission(path, 32, 500, weights_key="J")
    assert rates.shape == (32, 500, 6) and outputs.shape == (32, 500, 2)
    np.testing.assert_array_equal(weights, np.eye(6))
    assert read_submission(path, 32, 500)[2] is None  # W is optional
    with pytest.raises(HdbenchError, match="no 'K' array \\(--weights-key\\); found: J"):
        read_submission(path, 32, 500, weights_key="K")


def test_submitted_inputs_must_be_the_exported_trials(tmp_path, exported):
    with np.load(exported) as data:
        inputs = data["inputs"]
    good = tmp_path / "with_inputs.npz"
    np.savez(good, rates=np.ones((32, 500, 4)), inputs=inputs)
    ActivitySubject.from_file(good, [FAKE], QUICK_PROTOCOL).load()
    shifted = inputs.copy()
    shifted[5, 100, 0] += 1e-3  # e.g. trials exported by another hdbench version
    bad = tmp_path / "other_trials.npz"
    np.savez(bad, rates=np.ones((32, 500, 4)), inputs=shifted)
    with pytest.raises(HdbenchError, match="inputs of rows 0:32 are not the exported trials "
                                           "of reference 'fake'"):
        ActivitySubject.from_file(bad, [FAKE], QUICK_PROTOCOL)
    np.savez(bad, rates=np.ones((32, 500, 4)), inputs=inputs[:, :, :2])
    with pytest.raises(HdbenchError, match=r"inputs must be the exported \[32, 500, 3\]"):
        ActivitySubject.from_file(bad, [FAKE], QUICK_PROTOCOL)


def test_cli_reports_a_malformed_submission_in_one_line(tmp_path, exported, capsys):
    path = tmp_path / "short.npz"
    np.savez(path, rates=np.zeros((10, 500, 4), dtype=np.float32))
    code = main(["score", "--activity", str(path), "--quick", "--reference", FAKE,
                 "--cache", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "rates has 10 trials; the exported trials number 32" in err
    assert main(["score", "--activity", str(path), "--reference", FAKE]) == 2
    assert "the exported trials number 256" in capsys.readouterr().err  # not --quick


def test_an_activity_subject_replays_only_the_exported_trials(tmp_path, exported):
    from hdbench.system import Silence
    from hdbench.task import make_trials

    npz = _simulate(FakeRing(3), exported, tmp_path / "ring.npz")
    subject = ActivitySubject.from_file(npz, [FAKE], QUICK_PROTOCOL)
    system = subject.load()
    with np.load(exported) as data:
        inputs = data["inputs"]
    assert system.simulate(inputs).rates.shape == (32, 500, 8)
    with pytest.raises(NotComputableError, match="needs new simulations"):
        system.simulate(make_trials("cueva-1x", 32, seed=1))
    with pytest.raises(NotComputableError, match="needs silencing"):
        system.simulate(inputs, silence=Silence(units=(0,)))
    other = tmp_path / "other.npz"
    np.savez(other, rates=np.ones((32, 500, 8)))
    assert ActivitySubject.from_file(other, [FAKE], QUICK_PROTOCOL).identity() != \
        subject.identity()


def test_leaderboard_cli_takes_model_files_and_activity(tmp_path, exported, capsys):
    from tests.ring_system import ring_ctrnn

    model = tmp_path / "ringnet.py"
    model.write_text(RING_MODEL)
    npz = _simulate(ring_ctrnn(8), exported, tmp_path / "recorded.npz")
    assert main(["leaderboard", "--quick", "--dry-run", "--reference", FAKE, "--model",
                 f"{model}:make", "--activity", str(npz), "--cache", str(tmp_path / "cache"),
                 "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "would run: ringnet vs fake" in out and "would run: recorded vs fake" in out
