"""Small helpers every reader shares: checking a path, hashing its bytes, loading JSON."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from workbench.io.report import ReadError

__all__ = ["open_source_error", "file_sha256", "bytes_sha256", "load_json"]


def open_source_error(path: Path) -> None:
    """Raise :class:`ReadError` unless ``path`` is a readable file."""
    if not path.exists():
        raise ReadError(f"{path}: no such file.")
    if path.is_dir():
        raise ReadError(f"{path}: is a directory, expected a file.")
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise ReadError(f"{path}: cannot be opened ({exc.strerror}).") from None


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def bytes_sha256(data: bytes) -> str:
    """SHA-256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def load_json(data: bytes, *, source: str, what: str, comma_joined: bool = False) -> Any:
    """Parse JSON bytes; a :class:`ReadError` naming the source, line and column otherwise.

    ``comma_joined`` also accepts objects joined by commas without an enclosing array
    (52°North's SensorThings server writes them), read as a list.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReadError(f"{source}: not UTF-8 text at byte {exc.start}; expected {what} JSON.") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if comma_joined and exc.msg == "Extra data":
            try:
                return json.loads("[" + text + "]")
            except json.JSONDecodeError:
                pass
        raise ReadError(f"{source}: not valid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg}); expected {what}.") from None
    except RecursionError:
        raise ReadError(f"{source}: JSON nested too deeply; expected {what}.") from None
