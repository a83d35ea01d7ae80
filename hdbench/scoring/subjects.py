"""What gets scored: trained runs, untrained networks and reference-circuit instances.

Each subject knows its *identity* (a JSON-ready dict) and how to *load* itself as a system inside
a worker process. A score is stored under :func:`score_key`: the subject's identity, the
reference's identity (name and circuit version), the evaluation protocol and the versions of the
code that measures (:func:`hdbench.versions.measurement_identity`), so a number is never reused
once anything that determines it has changed:

- a trained run is identified by its run hash *and* a digest of its weights (a model retrained
  in place, or a committed run replaced by another, is a new subject);
- an untrained network by its model, options and init seed;
- a reference instance by its circuit's name, version and instance seed (a circuit built by a
  user's factory by the digest of its behaviour).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
from dataclasses import dataclass
from pathlib import Path

from hdbench.errors import HdbenchError
from hdbench.scoring.bundle import EvalProtocol, hash_of
from hdbench.training.config import TrainConfig
from hdbench.versions import measurement_identity

# The reference side of every comparison is instance 0; its ceiling is the mean over
# instances 1-3 scored against it, its floor the mean over untrained default networks of
# seeds 0-2.
REFERENCE_INSTANCE = 0
CEILING_INSTANCES = (1, 2, 3)
FLOOR_SEEDS = (0, 1, 2)
FLOOR_CONFIG = TrainConfig()


@functools.lru_cache(maxsize=32)
def _factory_behaviour(factory: str) -> str:
    from hdbench.user_models import as_user_system, behaviour_digest

    try:
        system = ReferenceSpec("x", factory).load(REFERENCE_INSTANCE)
    except HdbenchError:
        raise
    except Exception as err:
        raise HdbenchError(f"reference factory {factory!r} raised {type(err).__name__}: "
                           f"{err}") from None
    return behaviour_digest(as_user_system(system, f"reference factory {factory}"))


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

    def identity(self) -> dict:
        """Name, factory and what the circuit is: the built-in circuit's version, or the
        behaviour digest of a factory's instance 0."""
        if self.factory is None:
            import reference_circuits

            return {**self.to_dict(), "version": reference_circuits.version(self.name)}
        return {**self.to_dict(), "behaviour": _factory_behaviour(self.factory)}


def weights_digest(model_file) -> str:
    """SHA-256 (hex) of the parameters saved in a ``model.pt`` (names, shapes, values)."""
    from hdbench.training import checkpoint

    saved = checkpoint.load(model_file, kind="model")
    digest = hashlib.sha256(json.dumps([saved.get("model"), saved.get("model_options")])
                            .encode())
    for name in sorted(saved.get("state", {})):
        tensor = saved["state"][name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class TrainedSubject:
    """A finished training run (``path`` holds its ``model.pt``), identified by its run hash
    and the digest of its weights."""

    config: TrainConfig
    path: str
    weights: str

    @classmethod
    def from_run(cls, config: TrainConfig, path) -> TrainedSubject:
        path = Path(path)
        if not (path / "model.pt").is_file():
            raise HdbenchError(f"{path} holds no model.pt: is the training run finished?")
        return cls(config, str(path), weights_digest(path / "model.pt"))

    def identity(self) -> dict:
        return {"kind": "trained", "run_hash": self.config.run_hash(), "weights": self.weights}

    def load(self):
        from hdbench.runs import load_model

        if not (Path(self.path) / "model.pt").is_file():
            raise HdbenchError(f"{self.path} holds no model.pt: is the training run finished?")
        if weights_digest(Path(self.path) / "model.pt") != self.weights:
            raise HdbenchError(f"{self.path}/model.pt changed after it was planned for scoring; "
                               "run again")
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
                "seed": self.config.seed}

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
        return {"kind": "reference", **self.reference.identity(),
                "instance_seed": self.instance_seed}

    def load(self):
        return self.reference.load(self.instance_seed)

    def describe(self) -> str:
        return f"reference {self.reference.name} instance {self.instance_seed}"


@dataclass(frozen=True)
class DegradedSubject:
    """Instance ``instance_seed`` of a reference circuit degraded by ``kind`` at ``level``
    (:func:`reference_circuits.degrade`): the validity battery's graded subjects."""

    reference: ReferenceSpec
    instance_seed: int
    kind: str
    level: float
    seed: int = 0

    def identity(self) -> dict:
        return {"kind": "degraded", **self.reference.identity(),
                "instance_seed": self.instance_seed, "degradation": self.kind,
                "level": float(self.level), "seed": self.seed}

    def load(self):
        import reference_circuits

        return reference_circuits.degrade(self.reference.load(self.instance_seed), self.kind,
                                          self.level, seed=self.seed)

    def describe(self) -> str:
        return (f"{self.reference.name} instance {self.instance_seed}, {self.kind} "
                f"{self.level:g}")


Subject = TrainedSubject | UntrainedSubject | ReferenceSubject | DegradedSubject


def ceiling_subjects(reference: ReferenceSpec) -> list[ReferenceSubject]:
    return [ReferenceSubject(reference, k) for k in CEILING_INSTANCES]


def floor_subjects() -> list[UntrainedSubject]:
    return [UntrainedSubject(FLOOR_CONFIG.replace(seed=s)) for s in FLOOR_SEEDS]


def score_key(subject, reference: ReferenceSpec, protocol: EvalProtocol) -> str:
    """Cache key of a subject's scores against ``reference`` under ``protocol``."""
    return hash_of({"subject": subject.identity(), "reference": reference.identity(),
                    "protocol": protocol.to_dict(), "code": measurement_identity()})
