"""hdbench: a benchmarking suite for models of the head-direction system.

Kept import-light on purpose: ``hdbench --help`` must answer without importing torch.
"""

from hdbench._version import __version__

__all__ = ["__version__", "benchmarks", "load_leaderboard", "rank", "score", "summarise"]

_API = ("score", "summarise", "load_leaderboard", "rank", "benchmarks")


def __getattr__(name):  # the Python API, imported on first use (keeps `hdbench --help` light)
    if name in _API:
        from hdbench import api

        return getattr(api, name)
    raise AttributeError(f"module 'hdbench' has no attribute {name!r}")
