"""Simulate a reference circuit on task trials and write the result (``hdbench simulate``).

The output folder gets ``simulation.npz`` (rates, true and decoded heading, inputs, AV, mask,
cell types, preferred directions, W) and ``summary.json`` (decode error, gain, sizes, config),
each written atomically (temporary file in the same folder, then ``os.replace``).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np

from hdbench.atomic import atomic_write_bytes
from hdbench.errors import HdbenchError

NPZ_NAME = "simulation.npz"
SUMMARY_NAME = "summary.json"


def _prepare(out) -> Path:
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise HdbenchError(f"cannot write to {str(out)!r}: {err.strerror or err}") from None
    if not os.access(out, os.W_OK):
        raise HdbenchError(f"cannot write to {str(out)!r}: not writable")
    return out


def simulate_to_dir(circuit: str, task: str | None, n_trials: int, out, seed: int = 0,
                    instance_seed: int = 0) -> dict:
    """Simulate ``n_trials`` test trials of ``task`` and write them to ``out``.

    Parameters
    ----------
    circuit : str
        A name from :func:`reference_circuits.available`.
    task : str or None
        Task preset; None = the preset named like the circuit (``rodent``, ``fly``).
    n_trials : int
        Trials to simulate.
    out : path
        Output folder (created if missing).
    seed : int
        Seed of the test trials (test stream) and of the circuit's noise.
    instance_seed : int
        Which instance of the circuit.

    Returns
    -------
    dict
        The summary also written to ``summary.json``.
    """
    import reference_circuits
    from hdbench._version import __version__
    from hdbench.task import TEST_STREAM, get_spec, make_trials, seed_for
    from reference_circuits.measure import decode_metrics

    system = reference_circuits.load(circuit, instance_seed=instance_seed)
    spec = get_spec(task if task is not None else circuit)
    folder = _prepare(out)
    trials = make_trials(spec, n_trials, seed=seed_for(TEST_STREAM, seed))
    activity = system.simulate(trials, seed=seed)
    decoded = activity.decoded_heading()
    metrics = decode_metrics(decoded, trials.heading, trials.mask)
    buffer = io.BytesIO()
    np.savez(buffer, rates=activity.rates.astype(np.float32), heading=trials.heading,
             decoded_heading=decoded, outputs=activity.outputs, inputs=trials.inputs,
             av=trials.av, mask=trials.mask, cell_types=np.asarray(system.cell_types),
             preferred_directions=system.preferred_directions,
             weights=system.recurrent_weights())
    counts = {label: system.cell_types.count(label) for label in dict.fromkeys(system.cell_types)}
    summary = {
        "circuit": circuit, "task": spec.name, "trials": int(n_trials),
        "n_steps": int(trials.n_steps), "dt": spec.dt, "seed": int(seed),
        "instance_seed": int(instance_seed), **metrics, "n_units": system.n_units,
        "cell_types": counts, "config": system.config.to_dict(), "hdbench_version": __version__,
        "files": [NPZ_NAME, SUMMARY_NAME],
    }
    atomic_write_bytes(folder / NPZ_NAME, buffer.getvalue())
    atomic_write_bytes(folder / SUMMARY_NAME, (json.dumps(summary, indent=2) + "\n").encode())
    return summary
