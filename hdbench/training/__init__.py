"""Training: losses, the optimisation loop, checkpoints and resume."""

from hdbench.training.config import TrainConfig
from hdbench.training.losses import masked_mse, normalized_error, rate_penalty
from hdbench.training.trainer import evaluate, load_model, train

__all__ = ["TrainConfig", "evaluate", "load_model", "masked_mse", "normalized_error",
           "rate_penalty", "train"]
