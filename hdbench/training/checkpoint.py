"""Atomic checkpoint files that load without unpickling arbitrary objects."""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path

import torch

from hdbench.errors import HdbenchError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file in the same folder, then ``os.replace``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp creates 0600; give results normal permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


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
