import json
import subprocess
import sys
import time

import pytest

from hdbench.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "hdbench.cli", *args], capture_output=True,
                          text=True, timeout=120)


def test_help_is_fast_and_lists_subcommands():
    start = time.perf_counter()
    proc = run_cli("--help")
    assert proc.returncode == 0
    assert "train" in proc.stdout and "evaluate" in proc.stdout
    assert time.perf_counter() - start < 5  # generous: loaded CI machines; about 0.1 s here


def test_help_does_not_import_heavy_libraries():
    code = ("import sys; from hdbench.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'pandas', 'seaborn', 'sklearn') "
            "if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "[]"


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert "hdbench 0.1.0" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["train", "--task", "cueva-2x", "--out", "x"], "invalid choice"),
    (["train", "--updates", "-5", "--out", "x"], "positive integer"),
    (["train", "--model", "transformer", "--out", "x"], "unknown model"),
    (["train", "--out", "/proc/forbidden/run", "--updates", "1"], "cannot write"),
    (["evaluate", "/nonexistent/run"], "not a training run"),
])
def test_bad_input_gets_a_one_line_error(args, message, capsys):
    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_train_then_evaluate_json(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--units", "6", "--updates", "2", "--batch-size", "3", "--out",
                 str(out), "--quiet"]) == 0
    assert "test NE" in capsys.readouterr().out
    assert main(["evaluate", str(out), "--json", "--trials", "5"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) >= {"test_ne"} and result["test_trials"] == 5
    assert main(["train", "--units", "6", "--updates", "2", "--batch-size", "3", "--out",
                 str(out), "--quiet", "--resume"]) == 0


def test_every_option_of_every_command_has_help():
    import argparse

    from hdbench.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{name} {action.dest}" for name, command in sub.choices.items()
               for action in command._actions
               if not isinstance(action, argparse._HelpAction) and not action.help]
    assert not missing, missing


@pytest.mark.slow
def test_the_wheel_installs_in_a_fresh_venv_and_runs(tmp_path):
    """python -m build makes a wheel that installs (torch pinned) and runs hdbench --help."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    build = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir",
                            str(tmp_path / "dist"), str(root)], capture_output=True, text=True,
                           timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    assert "License classifiers are deprecated" not in build.stderr + build.stdout
    (wheel,) = (tmp_path / "dist").glob("hdbench-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    pip = tmp_path / "venv" / "bin" / "pip"
    install = subprocess.run([str(pip), "install", "-q", "torch==2.13.0", str(wheel)],
                             capture_output=True, text=True, timeout=1200)
    assert install.returncode == 0, install.stderr[-2000:]
    proc = subprocess.run([str(tmp_path / "venv" / "bin" / "hdbench"), "--help"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0 and "leaderboard" in proc.stdout
    page = subprocess.run([str(tmp_path / "venv" / "bin" / "python"), "-c",
                           "import importlib.resources as r; print(r.files('hdbench')"
                           ".joinpath('templates/leaderboard.html').is_file())"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert page.stdout.strip() == "True"
