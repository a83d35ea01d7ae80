"""Training: losses, the optimisation loop, checkpoints and resume."""

from hdbench.runs import load_model
from hdbench.training.config import TrainConfig
from hdbench.training.losses import masked_mse, normalized_error, rate_penalty
from hdbench.training.trainer import TrainingDiverged, evaluate, train

__all__ = ["TrainConfig", "TrainingDiverged", "evaluate", "load_model", "masked_mse",
           "normalized_error", "rate_penalty", "train"]
