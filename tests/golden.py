"""Golden outputs of every versioned component (:mod:`hdbench.versions`, circuit ``VERSION``s).

Each function computes a few numbers that depend on everything the component does. The stored
values (``tests/golden/values.json``) belong to a component version: when a change moves a
component's numbers, ``tests/test_golden.py`` fails until the component's version is bumped
(so that cached results of the old code are never reused) and the values are regenerated::

    python -m tests.golden --update

Tolerances are loose enough for BLAS differences between machines (relative 1e-5; 1e-4 after
training) and tight enough for any change of an algorithm, a random stream or a default.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

PATH = Path(__file__).resolve().parent / "golden" / "values.json"
TOLERANCE = {"training": 1e-4}
DEFAULT_TOLERANCE = 1e-5


def _summary(prefix: str, array) -> dict[str, float]:
    """Sum, sum of squares and a weighted sum (sensitive to order) of an array."""
    a = np.asarray(array, dtype=np.float64).ravel()
    weights = np.cos(np.arange(a.size) * 0.37)
    return {f"{prefix}.sum": float(a.sum()), f"{prefix}.sumsq": float((a * a).sum()),
            f"{prefix}.weighted": float((a * weights).sum())}


def task() -> dict[str, float]:
    from hdbench.task import PRESETS, make_trials

    values = {}
    for preset in sorted(PRESETS):
        trials = make_trials(preset, 3, seed=[7, 1])
        values.update(_summary(f"{preset}.inputs", trials.inputs))
        values.update(_summary(f"{preset}.heading", trials.heading))
    return values


def core() -> dict[str, float]:
    import torch

    from hdbench.core import integrate

    g = torch.Generator().manual_seed(3)
    N, B, T = 12, 3, 40
    W = torch.randn(N, N, generator=g) / N ** 0.5
    U = torch.randn(N, 3, generator=g)
    b = torch.randn(N, generator=g) * 0.1
    a0 = torch.randn(N, generator=g) * 0.1
    x = torch.randn(B, T, 3, generator=g) * 0.3
    values = {}
    for activation in ("retanh", "tanh", "relu", "softplus"):
        for noisy in (False, True):
            W_, U_ = W.clone().requires_grad_(), U.clone().requires_grad_()
            rates = integrate(x, W_, a0, 0.1, input_weight=U_, input_bias=b,
                              activation=activation,
                              state_noise_std=0.1 if noisy else 0.0,
                              generator=torch.Generator().manual_seed(5))
            (rates * torch.linspace(-1, 1, N)).sum().backward()
            key = f"{activation}.{'noisy' if noisy else 'clean'}"
            values.update(_summary(f"{key}.rates", rates.detach()))
            values.update(_summary(f"{key}.gradW", W_.grad))
    return values


def models() -> dict[str, float]:
    from hdbench.models import build

    values = {}
    for name in ("ctrnn", "gru", "lstm", "vanilla"):
        model = build(name, n_units=10, init_seed=2)
        for param_name, param in sorted(model.state_dict().items()):
            values.update(_summary(f"{name}.{param_name}", param.detach().numpy()))
    return values


def training() -> dict[str, float]:
    import tempfile

    from hdbench.training import TrainConfig, train

    values = {}
    for model in ("ctrnn", "gru"):
        config = TrainConfig(model=model, model_options={"n_units": 8}, updates=4, batch_size=4,
                             val_every=2, val_trials=4, test_trials=4, checkpoint_every=4)
        with tempfile.TemporaryDirectory() as folder:
            metrics = train(config, Path(folder) / "run", progress=False)
            history = (Path(folder) / "run" / "history.csv").read_text().splitlines()
        values[f"{model}.test_ne"] = float(metrics["test_ne"])
        losses = [float(line.split(",")[1]) for line in history[1:]]
        values.update(_summary(f"{model}.loss", losses))
    return values


def _ring_activity():
    from hdbench.task import make_trials
    from tests.ring_system import SPEC, ring_ctrnn

    net = ring_ctrnn(12)
    trials = make_trials(SPEC, 24, seed=[9, 0])
    return net, trials, net.simulate(trials)


def analysis() -> dict[str, float]:
    import pandas as pd

    from hdbench.analysis import classify_units, connectivity_summary

    net, trials, activity = _ring_activity()
    table = classify_units(activity, trials, gmm=False, max_shift_s=0.0)
    values = {f"types.{k}": float(v) for k, v in table["cell_type"].value_counts().items()}
    numeric = table.select_dtypes("number")
    for column in sorted(numeric.columns):
        values.update(_summary(f"table.{column}", numeric[column].fillna(0.0).to_numpy()))
    conn = connectivity_summary(net.recurrent_weights(), table, n_bins=18)
    pairs = conn.pairs.select_dtypes("number")
    if isinstance(pairs, pd.DataFrame):
        for column in sorted(pairs.columns):
            values.update(_summary(f"pairs.{column}", pairs[column].fillna(0.0).to_numpy()))
    return values


def metrics() -> dict[str, float]:
    from hdbench.metrics import LinearMetric, cka, havok_dmd, rsa
    from hdbench.metrics.dynamics import compare_dmd

    rng = np.random.default_rng(4)
    X, Y = rng.normal(size=(40, 6)), rng.normal(size=(40, 5))
    Y[:, :3] += X[:, :3]
    values = {"procrustes": LinearMetric(alpha=1.0).fit_score(X, Y),
              "cca": LinearMetric(alpha=0.0).fit_score(X, Y),
              "cka": cka(X, Y), "cka_debiased": cka(X, Y, debiased=True)}
    folds = rng.normal(size=(2, 12, 6))
    other = folds[..., :5] + 0.3 * rng.normal(size=(2, 12, 5))
    values["rsa"] = rsa.compare(rsa.rdm(folds, "cv_euclidean"),
                                rsa.rdm(other, "cv_euclidean"), "spearman")
    a = np.cumsum(rng.normal(size=(3, 60, 4)), axis=1) * 0.1
    b = np.cumsum(rng.normal(size=(3, 60, 4)), axis=1) * 0.1
    dmd_a, dmd_b = havok_dmd(a, n_delays=3, rank=6), havok_dmd(b, n_delays=3, rank=6)
    values["dmd.wasserstein"] = compare_dmd(dmd_a, dmd_b, method="wasserstein")
    return {k: float(v) for k, v in values.items()}


def reference(name: str):
    def compute() -> dict[str, float]:
        import reference_circuits
        from hdbench.task import make_trials

        values = {}
        for instance in (0, 1):
            circuit = reference_circuits.load(name, instance_seed=instance)
            spec = circuit.task if isinstance(getattr(circuit, "task", None), str) else name
            trials = make_trials(spec, 2, seed=[11, 0])
            activity = circuit.simulate(trials, seed=0)
            values.update(_summary(f"instance{instance}.rates", activity.rates[:, :120]))
            values.update(_summary(f"instance{instance}.W", circuit.recurrent_weights()))
        return values
    return compute


COMPONENTS = {"task": task, "core": core, "models": models, "training": training,
              "analysis": analysis, "metrics": metrics,
              "reference_circuits.rodent": reference("rodent"),
              "reference_circuits.fly": reference("fly")}


def version_of(component: str) -> int:
    if component.startswith("reference_circuits."):
        import reference_circuits

        return reference_circuits.version(component.split(".", 1)[1])
    from hdbench.versions import COMPONENTS as VERSIONS

    return VERSIONS[component]


def stored() -> dict:
    return json.loads(PATH.read_text()) if PATH.exists() else {}


def update(names=None) -> None:
    """Recompute and store the golden values of ``names`` (default every component)."""
    import torch

    torch.set_num_threads(1)
    data = stored()
    for name in names or COMPONENTS:
        data[name] = {"version": version_of(name), "values": COMPONENTS[name]()}
        print(f"{name}: version {data[name]['version']}, {len(data[name]['values'])} values")
    PATH.parent.mkdir(exist_ok=True)
    PATH.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "--update":
        sys.exit("usage: python -m tests.golden --update [component ...]")
    update(sys.argv[2:] or None)
