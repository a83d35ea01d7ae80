"""What gets scored: trained runs, untrained networks and reference-circuit instances.

Each subject knows its *identity* (a JSON-ready dict that keys the score cache: it changes when
the subject's scores could change) and how to *load* itself as a system inside a worker process.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path

from hdbench import __version__
from hdbench.errors import HdbenchError
from hdbench.scoring.bundle import EvalProtocol, hash_of
from hdbench.training.config import TrainConfig


@dataclass(frozen=True)
class ReferenceSpec:
    """A reference circuit by name, optionally built by a factory outside ``reference_circuits``.

    Parameters
    ----------
    name : str
        Used in benchmark ids (no dots).
    factory : str, optional
        ``"package.module:callable"``; called as ``callable(instance_seed=...)``. When None,
        ``reference_circuits.load(name, instance_seed=...)`` builds the circuit.
    """

    name: str
    factory: str | None = None

    def __post_init__(self):
        if not self.name or "." in self.name or "=" in self.name:
            raise HdbenchError(f"reference name {self.name!r} must be non-empty, without '.' "
                               "or '='")
        if self.factory is not None and self.factory.count(":") != 1:
            raise HdbenchError(f"reference factory must look like 'package.module:callable'; "
                               f"got {self.factory!r}")

    @classmethod
    def parse(cls, text) -> ReferenceSpec:
        """``"fly"`` or ``"myring=mypackage.circuits:make_ring"`` (or a ReferenceSpec)."""
        if isinstance(text, ReferenceSpec):
            return text
        name, sep, factory = str(text).partition("=")
        return cls(name=name, factory=factory if sep else None)

    def _factory(self):
        module, _, attr = self.factory.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as err:
            raise HdbenchError(f"cannot import reference factory {self.factory!r}: {err}") \
                from None
        if not callable(factory):
            raise HdbenchError(f"reference factory {self.factory!r} is not callable")
        return factory

    def check(self) -> None:
        """Fail early (in the driver) on an unknown name or an unimportable factory."""
        if self.factory is not None:
            self._factory()
            return
        import reference_circuits

        if self.name not in reference_circuits.available():
            known = ", ".join(reference_circuits.available()) or "(none registered yet)"
            raise HdbenchError(f"unknown reference circuit {self.name!r}; known: {known}")

    def load(self, instance_seed: int = 0):
        """Build instance ``instance_seed`` of the circuit."""
        if self.factory is None:
            import reference_circuits

            return reference_circuits.load(self.name, instance_seed=instance_seed)
        return self._factory()(instance_seed=instance_seed)

    def to_dict(self) -> dict:
        return {"name": self.name, "factory": self.factory}


@dataclass(frozen=True)
class TrainedSubject:
    """A finished training run (``path`` holds its ``model.pt``); identified by its run hash."""

    config: TrainConfig
    path: str

    def identity(self) -> dict:
        return {"kind": "trained", "run_hash": self.config.run_hash()}

    def load(self):
        from hdbench.training.trainer import load_model

        if not (Path(self.path) / "model.pt").is_file():
            raise HdbenchError(f"{self.path} holds no model.pt: is the training run finished?")
        return load_model(self.path)

    def describe(self) -> str:
        return f"{self.config.model} seed {self.config.seed} ({self.config.run_hash()})"


@dataclass(frozen=True)
class UntrainedSubject:
    """A freshly initialised network: the model, its options and the init seed of ``config``."""

    config: TrainConfig

    def identity(self) -> dict:
        return {"kind": "untrained", "model": self.config.model,
                "model_options": json.loads(json.dumps(self.config.model_options,
                                                       sort_keys=True)),
                "seed": self.config.seed, "hdbench_version": __version__}

    def load(self):
        from hdbench.training.trainer import build_model

        return build_model(self.config).eval()

    def describe(self) -> str:
        return f"untrained {self.config.model} seed {self.config.seed}"


@dataclass(frozen=True)
class ReferenceSubject:
    """Instance ``instance_seed`` of a reference circuit (used for ceilings)."""

    reference: ReferenceSpec
    instance_seed: int = 1

    def identity(self) -> dict:
        return {"kind": "reference", **self.reference.to_dict(),
                "instance_seed": self.instance_seed, "hdbench_version": __version__}

    def load(self):
        return self.reference.load(self.instance_seed)

    def describe(self) -> str:
        return f"reference {self.reference.name} instance {self.instance_seed}"


Subject = TrainedSubject | UntrainedSubject | ReferenceSubject


def subject_key(subject: Subject, protocol: EvalProtocol) -> str:
    """Cache key of a subject's scores under an evaluation protocol."""
    return hash_of({"subject": subject.identity(), "protocol": protocol.to_dict()})
