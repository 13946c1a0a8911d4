"""Counter-based random numbers: a pure function of (seed, stream, sensor, step).

Every value of the reference city is computed from its own coordinates, so any chunk
computes on its own and the same city comes out bit for bit whatever the chunking.
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["stream_key", "uniform", "normal", "uniform1d", "uniform_rows"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, vectorised (uint64 arithmetic wraps)."""
    z = z + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def stream_key(seed: int, *names: object) -> np.uint64:
    """A 64-bit key for one named stream of one seed."""
    text = "/".join(str(n) for n in names).encode()
    base = np.array([(int(seed) & 0xFFFFFFFF) << 32 | zlib.crc32(text)], dtype=np.uint64)
    return _mix(_mix(base))[0]


def _bits(key: np.uint64, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    r = _mix(np.asarray(rows, dtype=np.uint64) ^ key)
    with np.errstate(over="ignore"):
        return _mix(r[:, None] + np.asarray(cols, dtype=np.uint64)[None, :] * _GOLDEN)


def uniform(key: np.uint64, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Uniform (0, 1) of shape (len(rows), len(cols))."""
    z = _bits(key, rows, cols)
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)


def uniform1d(key: np.uint64, idx: np.ndarray) -> np.ndarray:
    """Uniform (0, 1) for a 1-d index."""
    z = _mix(np.asarray(idx, dtype=np.uint64) ^ key)
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)


def _rows(seed: int, stream: str, rows: np.ndarray, t0: int, t1: int, n_total: int, draw: str) -> np.ndarray:
    tag = zlib.crc32(stream.encode())
    out = np.empty((len(rows), t1 - t0))
    for i, row in enumerate(np.asarray(rows, dtype=np.int64)):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), tag, int(row)])))
        values = getattr(rng, draw)(t1 if t0 == 0 else n_total)
        out[i] = values[t0:t1]
    return out


def normal(seed: int, stream: str, rows: np.ndarray, t0: int, t1: int, n_total: int) -> np.ndarray:
    """Standard normal of shape (len(rows), t1 - t0): steps t0..t1-1 of each row's own stream.

    Each row (sensor) has one PCG64 stream over the whole time axis; a chunk that covers
    only part of the axis draws the full row and slices it, so values never depend on
    the chunking.
    """
    return _rows(seed, stream, rows, t0, t1, n_total, "standard_normal")


def uniform_rows(seed: int, stream: str, rows: np.ndarray, t0: int, t1: int, n_total: int) -> np.ndarray:
    """Uniform [0, 1) like :func:`normal`: one stream per row, independent of chunking."""
    return _rows(seed, stream, rows, t0, t1, n_total, "random")
