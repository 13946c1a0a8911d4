"""Run a block kernel over whole zones: the one place the perception stage maps over dask chunks.

The buddy checks compare each sensor with the *other sensors of its zone*, so a kernel needs
every sensor of a zone in the block it sees. When the sensor axis is one chunk (or the data is
in memory) the kernel runs on it as is. When it is split into several chunks, the sensors are
put in zone order once (a gather), cut into chunks at zone boundaries of about the input's
chunk size (at most :data:`BLOCK_BYTES` when computed in this process), mapped, and put back
in their original order — one deliberate rechunk (DESIGN.md
§5), so the result never depends on the chunking. Blocks that already hold whole zones (e.g.
after :func:`zone_order`, which callers that do not need the original order use once, up
front) are mapped as they are: no gather, no putting back.

Each kernel gets a ``(sensor, time)`` block, the matching per-sensor zone codes, and returns
one or more ``(sensor, time)`` arrays (one task per block and variable, whatever the number of
tests it runs).

Data from *other* zones reaches a block only as a small summary computed first: a dask array
among the kernel's keyword arguments (or the values of a dict argument, e.g. the flag
parameters' neighbour reference, :mod:`workbench.perception._lone`) is handed whole to every
block (one chunk), so blocks stay zone-complete and every block waits for that summary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import dask.array as dsa
import numpy as np
import xarray as xr

__all__ = ["zone_codes", "zone_map", "zone_order", "zone_complete", "gather_rows", "BLOCK_BYTES"]

#: input bytes of a gathered zone-complete block, at most (whole zones, so a block may be
#: larger, and never larger than the input's own sensor chunks), when the computation runs in
#: this process's threads; worker processes get blocks of the input's chunk size (fewer tasks
#: and transfers: 1,000 sensors x 1 y on 2 workers took 13.4 s with 8 MiB blocks, 11.3 s without)
BLOCK_BYTES = 2**23


def zone_codes(ds: xr.Dataset) -> np.ndarray:
    """Integer zone code per sensor (``-1`` where the zone is missing)."""
    labels = np.asarray(ds["zone"].to_numpy()).astype(str)  # boundary: zone labels, one per sensor
    _, codes = np.unique(labels, return_inverse=True)
    return codes.astype(np.int64)


def _zone_chunks(codes_sorted: np.ndarray, target: int) -> tuple[int, ...]:
    """Chunk sizes along the zone-sorted sensor axis that never split a zone (≈ ``target``)."""
    bounds = np.flatnonzero(np.diff(codes_sorted)) + 1
    edges = np.r_[0, bounds, len(codes_sorted)]
    out, start = [], 0
    for a, b in zip(edges[:-1], edges[1:]):
        if b - start > target and a > start:
            out.append(a - start)
            start = a
    out.append(len(codes_sorted) - start)
    return tuple(out)


def _target(x: xr.DataArray | object, chunk: int) -> int:
    """Sensors per gathered block: the input's chunk, or fewer to stay within :data:`BLOCK_BYTES`."""
    from workbench._options import in_process

    if not in_process():
        return int(chunk)
    row = int(np.prod(x.shape[1:])) * x.dtype.itemsize if len(x.shape) > 1 else x.dtype.itemsize
    return max(1, min(int(chunk), BLOCK_BYTES // max(1, row)))


def zone_complete(codes: np.ndarray, chunks: Sequence[int]) -> bool:
    """Whether no zone is split between two of the sensor ``chunks``."""
    which = np.repeat(np.arange(len(chunks)), chunks)
    return len(np.unique(np.stack([codes, which]), axis=1)[0]) == len(np.unique(codes))


def zone_order(ds: xr.Dataset, codes: np.ndarray) -> tuple[xr.Dataset, np.ndarray]:
    """``ds`` with its sensors in zone order, chunked at zone boundaries (the gather :func:`zone_map`
    would do per output, done once), and the matching codes; unchanged when not split along sensor."""
    x0 = next((v for v in ds.data_vars.values() if "sensor" in v.dims and v.chunks is not None), None)
    if x0 is None or len(x0.chunksizes["sensor"]) < 2 or zone_complete(codes, x0.chunksizes["sensor"]):
        return ds, codes
    order = np.argsort(codes, kind="stable")
    chunks = _zone_chunks(codes[order], _target(x0.transpose("sensor", ...), max(x0.chunksizes["sensor"])))
    lazy = {k: v for k, v in ds.variables.items() if "sensor" in v.dims and isinstance(v.data, dsa.Array)}
    out = ds.drop_vars(list(lazy)).isel(sensor=order)
    for k, v in lazy.items():
        data = gather_rows(v.data, order, chunks, axis=v.dims.index("sensor"))
        var = xr.Variable(v.dims, data, v.attrs, v.encoding)
        out = out.assign_coords({k: var}) if k in ds.coords else out.assign({k: var})
    out = out[list(ds.data_vars)]  # the input's order of variables
    return out.chunk({"sensor": chunks, "time": -1}), codes[order]


def gather_rows(x: dsa.Array, order: np.ndarray, chunks: Sequence[int], *, axis: int = 0) -> dsa.Array:
    """``x`` taken at ``order`` along ``axis``, in blocks of ``chunks``: each block is one task
    that copies its rows straight from the input chunks holding them (dask's take would build
    gathered blocks of the input's chunk size first and cut them again)."""
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    name = "zone-gather-" + tokenize(x.name, order, tuple(chunks), axis)
    bounds = np.cumsum((0,) + x.chunks[axis])
    which = np.searchsorted(bounds, order, side="right") - 1  # input chunk of each taken row
    local = order - bounds[which]
    others = [range(len(c)) for i, c in enumerate(x.chunks) if i != axis]
    dsk: dict = {}
    start = 0
    for j, n in enumerate(chunks):
        w, loc = which[start:start + n], local[start:start + n]
        parts = [(int(k), np.flatnonzero(w == k), loc[w == k]) for k in np.unique(w)]
        for rest in np.ndindex(*[len(r) for r in others]):
            key = (*rest[:axis], j, *rest[axis:])
            srcs = [(x.name, *rest[:axis], k, *rest[axis:]) for k, _, _ in parts]
            dsk[(name, *key)] = (_take_rows, srcs, [p for _, p, _ in parts], [q for _, _, q in parts], n, axis)
        start += n
    out_chunks = tuple(tuple(chunks) if i == axis else c for i, c in enumerate(x.chunks))
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[x])
    return dsa.Array(graph, name, chunks=out_chunks, dtype=x.dtype, meta=x._meta)


def _gathered(a: xr.DataArray, order: np.ndarray, chunks: Sequence[int]) -> xr.DataArray:
    """``a.isel(sensor=order)`` in sensor blocks of ``chunks``, its data by :func:`gather_rows`."""
    coords = {k: c for k, c in a.coords.items() if "sensor" not in c.dims}
    coords.update({k: c.variable[{"sensor": order}] for k, c in a.coords.items() if "sensor" in c.dims})
    data = gather_rows(a.data, order, chunks, axis=a.dims.index("sensor"))
    return xr.DataArray(data, dims=a.dims, coords=coords, attrs=a.attrs, name=a.name).chunk({"sensor": tuple(chunks)})


def _take_rows(blocks: list, positions: list, rows: list, n: int, axis: int) -> np.ndarray:
    first = np.asarray(blocks[0])
    shape = list(first.shape)
    shape[axis] = n
    out = np.empty(shape, dtype=first.dtype)
    for b, pos, r in zip(blocks, positions, rows):
        src = np.moveaxis(np.asarray(b), axis, 0)
        np.moveaxis(out, axis, 0)[pos] = src[r]
    return out


def zone_map(func: Callable[..., object], arrays: Sequence[xr.DataArray], codes: np.ndarray, *,
             dtypes: Sequence[type], kwargs: dict | None = None) -> list[xr.DataArray]:
    """``func(*blocks, codes=block_codes, **kwargs)`` over zone-complete ``(sensor, time)`` blocks.

    ``arrays`` share dims ``(sensor, time)``; ``func`` returns one array per entry of ``dtypes``
    (a tuple when there are several). Lazy when the inputs are dask-backed.
    """
    arrays = [a.transpose("sensor", "time") for a in arrays]
    x0 = arrays[0]
    n_out = len(dtypes)
    order = None
    if x0.chunks is not None and len(x0.chunks[0]) > 1 and zone_complete(codes, x0.chunks[0]):
        arrays = [a.chunk({"time": -1}) for a in arrays]  # already whole zones per chunk: no gather
        codes_used = codes
    elif x0.chunks is not None and len(x0.chunks[0]) > 1:
        order = np.argsort(codes, kind="stable")
        target = _target(x0, max(x0.chunks[0]))
        chunks = _zone_chunks(codes[order], target)
        arrays = [_gathered(a, order, chunks).chunk({"time": -1}) for a in arrays]
        codes_used = codes[order]
    else:
        codes_used = codes
        if x0.chunks is not None:
            arrays = [a.chunk({"time": -1}) for a in arrays]
    code_da = xr.DataArray(codes_used, dims="sensor", coords={"sensor": arrays[0]["sensor"]})
    if arrays[0].chunks is not None:
        code_da = code_da.chunk({"sensor": arrays[0].chunks[0]})
    paths = _shared_paths(kwargs or {})  # dask summaries among the kwargs: whole to every block
    shared = [xr.DataArray(_get(kwargs, p).rechunk(-1), dims=[f"_shared{i}_{j}" for j in range(_get(kwargs, p).ndim)])
              for i, p in enumerate(paths)]

    def call(*blocks):
        data, c, extra = blocks[:len(arrays)], blocks[len(arrays)], blocks[len(arrays) + 1:]
        kw = _put(kwargs or {}, paths, extra)
        out = func(*data, codes=np.asarray(c).reshape(-1), **kw)
        return out if n_out > 1 else out

    res = xr.apply_ufunc(
        call, *arrays, code_da, *shared,
        input_core_dims=[["time"]] * len(arrays) + [[]] + [list(a.dims) for a in shared],
        output_core_dims=[["time"]] * n_out,
        dask="parallelized", output_dtypes=list(dtypes),
    )
    res = list(res) if n_out > 1 else [res]
    res = [r.transpose("sensor", "time") for r in res]
    if order is not None:
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        res = [_gathered(r, inverse, x0.chunks[0]) for r in res]
    return res


def _shared_paths(kwargs: dict) -> list[tuple[str, ...]]:
    """Keys (one or two deep) of the dask arrays among ``kwargs``."""
    out: list[tuple[str, ...]] = []
    for k, v in kwargs.items():
        if isinstance(v, dsa.Array):
            out.append((k,))
        elif isinstance(v, dict):
            out.extend((k, k2) for k2, v2 in v.items() if isinstance(v2, dsa.Array))
    return out


def _get(kwargs: dict, path: tuple[str, ...]):
    return kwargs[path[0]] if len(path) == 1 else kwargs[path[0]][path[1]]


def _put(kwargs: dict, paths: list[tuple[str, ...]], values: Sequence[np.ndarray]) -> dict:
    """``kwargs`` with the computed blocks in place of the dask arrays at ``paths`` (copies, not in place)."""
    if not paths:
        return kwargs
    kw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in kwargs.items()}
    for p, v in zip(paths, values):
        if len(p) == 1:
            kw[p[0]] = np.asarray(v)
        else:
            kw[p[0]][p[1]] = np.asarray(v)
    return kw
