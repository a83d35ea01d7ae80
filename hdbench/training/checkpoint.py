"""Atomic checkpoint files that load without unpickling arbitrary objects."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from hdbench.atomic import atomic_write_bytes, atomic_write_text
from hdbench.errors import HdbenchError

__all__ = ["atomic_write_bytes", "atomic_write_text", "load", "save"]


def save(obj: dict, path) -> None:
    """``torch.save`` ``obj`` (tensors, numbers, strings, lists, dicts) atomically."""
    import io

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load(path, kind: str | None = None) -> dict:
    """Load a checkpoint with ``weights_only=True``; bad files raise :class:`HdbenchError`.

    ``kind`` (if given) must equal the file's ``"kind"`` entry, so that e.g. a model file is
    not mistaken for a training checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise HdbenchError(f"checkpoint {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, OSError,
            ValueError) as err:
        raise HdbenchError(f"{path} is not a readable hdbench checkpoint ({err})") from None
    if not isinstance(obj, dict) or "kind" not in obj:
        raise HdbenchError(f"{path} is not an hdbench checkpoint (no 'kind' entry)")
    if kind is not None and obj["kind"] != kind:
        raise HdbenchError(f"{path} holds a {obj['kind']!r}, expected a {kind!r}")
    return obj
