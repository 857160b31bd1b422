"""Checkpoint files: saved atomically, loaded safely (docs/run_format.md, "checkpoints").

A checkpoint is a file people download and share, so it is read with
``torch.load(weights_only=True)``: only tensors and plain containers (dict, list, tuple,
str, numbers, None) load, and a file whose unpickling would build any other object (run
code) is refused with a one-line error before anything of it runs. Checkpoints written
before format 2 kept the recorder's eigenbasis as a NumPy array; ``convert_checkpoint``
rewrites such a file, by an explicit opt-in that executes it (``trust_source=True``).
"""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from linear_ssl.runs import atomic_write_bytes

CHECKPOINT_FORMAT = 2  # 2: tensors and plain containers only; 1: could hold NumPy arrays
READABLE_FORMATS = (1, 2)  # a format-1 file loads when it holds no NumPy array
_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")
CONVERT_HINT = (
    "an old linear_ssl checkpoint from a source you trust converts with "
    "`linear-ssl convert-checkpoint OLD NEW --trust-source`"
)


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """``torch.save`` of ``state`` to ``path``, atomically (temporary file + rename)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _corrupt(path: Path, err: Exception) -> ValueError:
    return ValueError(f"checkpoint {path} is corrupt ({_first_line(err)}): delete it")


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A linear_ssl checkpoint read with ``weights_only=True``; one-line errors for a file
    that is missing, corrupt, unsafe (it would build an object other than a tensor or a
    plain container: refused, nothing of it runs) or not a linear_ssl checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = _GLOBAL.search(str(err))
        if found is None:
            raise _corrupt(path, err) from None
        raise ValueError(
            f"checkpoint {path} was refused: loading it would call {found.group(1)}, and a "
            f"checkpoint may hold only tensors and plain containers ({CONVERT_HINT})"
        ) from None
    except Exception as err:  # noqa: BLE001 - a torn zip, a truncated file: corrupt
        raise _corrupt(path, err) from None
    if not isinstance(state, dict) or state.get("format") not in READABLE_FORMATS:
        raise ValueError(
            f"checkpoint {path} is not a linear_ssl checkpoint (format {CHECKPOINT_FORMAT})"
        )
    return state


def _plain(obj: Any) -> Any:
    """``obj`` with every NumPy array (and NumPy scalar) a tensor / Python number."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    return obj


def convert_checkpoint(old: str | Path, new: str | Path, *, trust_source: bool = False) -> Path:
    """Rewrite an old (format 1) checkpoint as format 2: NumPy arrays become tensors.

    This EXECUTES ``old`` (``torch.load(weights_only=False)`` runs whatever code the file
    holds), so it refuses unless ``trust_source=True``: convert only files you made or got
    from someone you trust. The result loads with ``weights_only=True`` (it is checked).
    """
    old, new = Path(old), Path(new)
    if not trust_source:
        raise ValueError(
            f"converting {old} executes it (it is a pickle): pass --trust-source "
            "(trust_source=True) only if you made the file or trust where it came from"
        )
    if not old.is_file():
        raise FileNotFoundError(f"checkpoint {old} does not exist")
    if new.resolve() == old.resolve():
        raise ValueError(f"convert {old} into a new file, not over itself")
    try:
        state = torch.load(old, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise ValueError(f"checkpoint {old} is corrupt ({_first_line(err)})") from None
    if not isinstance(state, dict) or state.get("format") not in READABLE_FORMATS:
        raise ValueError(f"{old} is not a linear_ssl checkpoint (format 1 or 2)")
    state = {**_plain(state), "format": CHECKPOINT_FORMAT}
    new.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(state, new)
    try:
        load_checkpoint(new)  # what was written must load safely
    except ValueError:
        new.unlink()
        raise
    return new
