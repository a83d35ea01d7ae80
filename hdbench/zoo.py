"""The model zoo as data: which models (config + seeds) the leaderboard trains and scores.

``QUICK_ZOO`` is sized for ``hdbench leaderboard --quick`` (a few minutes on 2 cores from an empty
cache); ``ZOO`` is the published leaderboard's. Checkpoints of trained zoo models are exported to
``<out>/zoo/<model-id>-seed<k>/`` (config.json, model.pt, history.csv, metrics.json, as written
by :func:`hdbench.training.train`) and reused from there when they were made by today's code
(their stored run hash matches; :mod:`hdbench.runs`).
"""

from __future__ import annotations

from hdbench.experiments.sparse_recordings import student_config as sparse_student_config
from hdbench.scoring.board import ZooEntry
from hdbench.training.config import TrainConfig

# The quick zoo must train and be scored in <= 5 minutes on 2 cores from an empty cache
# (``hdbench leaderboard --quick`` runs 2 jobs at once). With the paper's initialisation the
# CTRNN sits on an NE ~ 0.9 plateau until its input weights have grown; a large input learning
# rate (30 x 2e-3) gets it off the plateau after ~350 updates of 64 trials, and a cosine decay
# settles it at validation NE 0.11 after 700 updates (seed 0; ~85 s of one core). A GRU update
# costs 3x as much, so the GRU gets 300 updates (~100 s): a smoke-test baseline that does not
# learn the task in that time (NE ~ 0.8), not a tuned one.
QUICK_TRAINING = dict(batch_size=64, lr=2e-3, input_lr_factor=30.0, lr_schedule="cosine",
                      val_every=50, val_trials=64, test_trials=128, checkpoint_every=50)

QUICK_ZOO: tuple[ZooEntry, ...] = (
    ZooEntry("ctrnn-quick", TrainConfig(model="ctrnn", updates=700, **QUICK_TRAINING),
             description="Cueva CTRNN, 100 units, 700 updates of 64 trials"),
    ZooEntry("gru-quick", TrainConfig(model="gru", updates=300, **QUICK_TRAINING),
             description="GRU, 100 units, 300 updates of 64 trials"),
    ZooEntry("ctrnn-untrained", TrainConfig(model="ctrnn"), trained=False,
             description="Cueva CTRNN at initialisation (the floor network)"),
)

# The published zoo: every model with the default schedule (5000 updates of 100 trials, AdamW
# 1e-3 with a cosine decay and 10x the learning rate on the input weights), 3 seeds each.
TRAINING = dict(lr_schedule="cosine", input_lr_factor=10.0)
SEEDS = (0, 1, 2)
TASKS = {"cueva-0.1x": "cueva-0p1x", "cueva-3x": "cueva-3x", "rodent": "rodent", "fly": "fly"}
KAO_ACTIVATIONS = ("retanh", "tanh", "relu", "softplus")
KAO_RATE_PENALTIES = {0.0: "0", 1e-3: "1e-3", 1e-2: "1e-2"}

ZOO: tuple[ZooEntry, ...] = (
    # noise_location spelled out: the committed results/zoo/ctrnn-seed* runs were trained so.
    ZooEntry("ctrnn", TrainConfig(model="ctrnn", model_options={"noise_location": "state"},
                                  **TRAINING), seeds=SEEDS,
             description="Cueva CTRNN, 100 units, retanh, trained on cueva-1x"),
    *(ZooEntry(f"ctrnn-{label}", TrainConfig(model="ctrnn", task=task, **TRAINING),
               seeds=SEEDS, description=f"Cueva CTRNN trained on the {task} task statistics")
      for task, label in TASKS.items()),
    # Kao (2019): activation x rate regularisation, the penalty held fixed (not adapted)
    *(ZooEntry(f"kao-{activation}-rate{label}",
               TrainConfig(model="ctrnn", model_options={"activation": activation},
                           rate_penalty=penalty, adaptive_rate_penalty=False, **TRAINING),
               seeds=SEEDS, description=f"CTRNN, {activation}, fixed rate penalty {label}")
      for activation in KAO_ACTIVATIONS for penalty, label in KAO_RATE_PENALTIES.items()),
    ZooEntry("gru", TrainConfig(model="gru", **TRAINING), seeds=SEEDS,
             description="GRU, 100 units"),
    ZooEntry("lstm", TrainConfig(model="lstm", **TRAINING), seeds=SEEDS,
             description="LSTM, 100 units"),
    ZooEntry("vanilla", TrainConfig(model="vanilla", **TRAINING), seeds=SEEDS,
             description="tanh RNN, 100 units"),
    ZooEntry("ctrnn-untrained", TrainConfig(model="ctrnn"), seeds=SEEDS, trained=False,
             description="Cueva CTRNN at initialisation"),
    # Students of `hdbench experiment sparse-recordings` (same configs, so its runs are reused):
    # trained on a reference's outputs plus a fraction p of its neurons (p = 0: outputs only).
    *(ZooEntry(f"sparse-{teacher}-p{label}", sparse_student_config(teacher, p), seeds=SEEDS,
               description=f"CTRNN student of the {teacher} circuit, {label.replace('p', '.')} "
                           "of its neurons recorded")
      for teacher in ("fly", "rodent") for p, label in ((0.0, "0"), (0.1, "0p1"), (1.0, "1"))),
)


def get_zoo(quick: bool = False) -> tuple[ZooEntry, ...]:
    return QUICK_ZOO if quick else ZOO
