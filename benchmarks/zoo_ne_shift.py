"""Did new training code change the distribution of test NE? The committed zoo at a git revision
against the zoo in the working tree, run by run.

    python -m benchmarks.zoo_ne_shift --old 0b958d2^ [--zoo results/zoo] [--boot 10000]

Runs are paired by folder name and kept only where both configs are equal (code versions
aside), so each pair is the same recipe, task and seed trained by the two versions of the code.
Training is seed-deterministic but the noise streams differ between versions, so a pair is two
independent draws from the run-to-run distribution of one config; the per-family tests ask
whether the two distributions differ:

- Wilcoxon signed-rank test on log NE (the shift of the typical run);
- McNemar's exact test on "NE at or above 1 %" (the late-escape tail: runs that stayed on the
  plateau past the schedule);
- the median log10 ratio new / old with a bootstrap 95 % interval over runs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np

FAMILIES = (
    ("CTRNN family on cueva-1x (ctrnn, kao-*)", ("ctrnn-seed", "kao-")),
    ("CTRNN on the reference tasks", ("ctrnn-fly", "ctrnn-rodent")),
    ("GRU and LSTM", ("gru-", "lstm-")),
)
THRESHOLD = 0.01


def _git_json(rev: str, path: str) -> dict | None:
    out = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else None


def pairs(old_rev: str, zoo: Path) -> dict[str, list[tuple[str, float, float]]]:
    """``{family: [(run, old NE, new NE)]}`` for runs present in both with equal configs."""
    found: dict[str, list] = {}
    for folder in sorted(zoo.iterdir()):
        family = next((f for f, prefixes in FAMILIES if folder.name.startswith(prefixes)), None)
        if family is None or not (folder / "metrics.json").is_file():
            continue
        rel = folder.as_posix()
        old_metrics = _git_json(old_rev, f"{rel}/metrics.json")
        old_config = _git_json(old_rev, f"{rel}/config.json")
        if old_metrics is None or old_config is None:
            continue
        new_config = json.loads((folder / "config.json").read_text())
        if old_config.get("config", old_config) != new_config.get("config", new_config):
            continue
        new_metrics = json.loads((folder / "metrics.json").read_text())
        found.setdefault(family, []).append((folder.name, float(old_metrics["test_ne"]),
                                             float(new_metrics["test_ne"])))
    return found


def compare(old: np.ndarray, new: np.ndarray, n_boot: int = 10000, seed: int = 0) -> dict:
    """The tests of the module docstring on paired NE arrays."""
    from scipy import stats

    log_ratio = np.log10(new) - np.log10(old)
    rng = np.random.default_rng(seed)
    boot = np.median(log_ratio[rng.integers(0, len(log_ratio), (n_boot, len(log_ratio)))],
                     axis=1)
    up = int(((old < THRESHOLD) & (new >= THRESHOLD)).sum())
    down = int(((old >= THRESHOLD) & (new < THRESHOLD)).sum())
    return {"n": len(old), "median_old": float(np.median(old)),
            "median_new": float(np.median(new)),
            "tail_old": int((old >= THRESHOLD).sum()), "tail_new": int((new >= THRESHOLD).sum()),
            "wilcoxon_p": float(stats.wilcoxon(np.log10(old), np.log10(new)).pvalue),
            "mcnemar": (up, down),
            "mcnemar_p": float(stats.binomtest(up, up + down).pvalue) if up + down else 1.0,
            "median_log10_ratio": float(np.median(log_ratio)),
            "ci": (float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975)))}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="git revision of the older zoo")
    parser.add_argument("--zoo", default="results/zoo", type=Path)
    parser.add_argument("--boot", type=int, default=10000)
    args = parser.parse_args(argv)
    for family, runs in pairs(args.old, args.zoo).items():
        old = np.array([r[1] for r in runs])
        new = np.array([r[2] for r in runs])
        c = compare(old, new, args.boot)
        print(f"{family}: {c['n']} paired runs")
        print(f"  median test NE {100 * c['median_old']:.2f} % -> {100 * c['median_new']:.2f} %;"
              f" runs >= {100 * THRESHOLD:g} %: {c['tail_old']} -> {c['tail_new']}")
        print(f"  median log10(new/old) {c['median_log10_ratio']:+.3f} "
              f"[95 % CI {c['ci'][0]:+.3f}, {c['ci'][1]:+.3f}]; Wilcoxon p {c['wilcoxon_p']:.2f};"
              f" McNemar {c['mcnemar'][0]} up / {c['mcnemar'][1]} down, p {c['mcnemar_p']:.2f}")


if __name__ == "__main__":
    main()
