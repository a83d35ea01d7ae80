"""hdbench: a benchmarking suite for models of the head-direction system.

Kept import-light on purpose: ``hdbench --help`` must answer without importing torch.
"""

__version__ = "0.1.0"
