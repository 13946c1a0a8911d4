"""The direct chunk reader (workbench/io/_direct.py): the same bytes as Zarr, less memory.

``read_city`` reads the series of the stores ``write_city`` writes by decompressing each
chunk file into its final array. It must give exactly what xarray and Zarr give — edge
chunks, chunks never written (all fill value) — and leave any other layout to them.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

pytest.importorskip("zarr")


def _series(tree):
    for node in tree.children:
        if node == "zones":
            continue
        for v, var in tree[node].data_vars.items():
            if var.ndim == 2:
                yield node, v, var


def _same(a, b):
    return a.dtype == b.dtype and np.array_equal(np.ascontiguousarray(a).view(np.uint8), np.ascontiguousarray(b).view(np.uint8))


@pytest.fixture(scope="module")
def odd_store(tmp_path_factory):
    """A store whose sensor axis does not fill its last chunk, with one chunk all NaN."""
    from workbench.io import write_city
    from workbench.synth import make_city

    city = make_city(zones=4, sensors_per_system=11, days=10, seed=5)
    ds = city["energy"].to_dataset()
    load = ds["electric_load"].load()
    load[:4] = np.nan  # the whole first chunk (4 sensors) empty: Zarr does not write it
    city["energy"] = xr.DataTree(ds.assign(electric_load=load.chunk({"sensor": 4})))
    return write_city(city, tmp_path_factory.mktemp("direct") / "odd.zarr", progress=False)


def test_read_city_reads_series_directly_with_zarrs_bytes(odd_store):
    from workbench.io import read_city

    tree = read_city(odd_store)
    plain = xr.open_datatree(odd_store, engine="zarr", consolidated=False, chunks={})
    seen = 0
    for node, v, var in _series(tree):
        assert var.data.name.startswith("read-"), (node, v)
        assert var.chunks == plain[node][v].chunks
        assert _same(var.values, plain[node][v].values), (node, v)
        assert var.attrs == plain[node][v].attrs
        seen += 1
    assert seen >= 7
    load = tree["energy"]["electric_load"]
    assert load.chunks[0][-1] < load.chunks[0][0]  # an edge chunk
    assert not (odd_store / "energy" / "electric_load" / "c" / "0" / "0").exists()  # the empty chunk was not written
    assert np.isnan(load.values[:4]).all() and np.isfinite(load.values[4:]).any()


def test_another_codec_is_left_to_zarr(tmp_path, monkeypatch):
    import workbench.io.store as store
    from workbench.io import read_city
    from workbench.synth import make_city

    monkeypatch.setattr(store, "_zarr_encoding", lambda city: {})  # zarr's default codec (zstd)
    path = store.write_city(make_city(zones=4, sensors_per_system=6, days=7, seed=2), tmp_path / "zstd.zarr", progress=False)
    names = [var.data.name for _, _, var in _series(read_city(path))]
    assert names and not any(n.startswith("read-") for n in names)


def test_a_chunk_read_decodes_into_one_buffer(odd_store):
    """One allocation of the chunk's size beside the compressed bytes (Zarr makes two)."""
    import tracemalloc

    import zarr

    from workbench.io._direct import read_chunk

    arr = zarr.open_array(odd_store / "water" / "water_flow", mode="r")
    rows, cols = arr.chunks
    tracemalloc.start()
    got = read_chunk(str(odd_store / "water" / "water_flow" / "c" / "0" / "0"), arr.chunks, arr.dtype, np.nan,
                     min(rows, arr.shape[0]), min(cols, arr.shape[1]))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert _same(got, arr[: got.shape[0], : got.shape[1]])
    chunk_bytes = rows * cols * arr.dtype.itemsize
    assert peak < 2 * chunk_bytes


def test_median_of_rows_equals_the_median_over_every_row():
    """The city's median zone from the rows that hold values only (perception's ``rep``)."""
    import dask.array as da

    from workbench.perception._common import median_of_rows, median_over

    rng = np.random.default_rng(4)
    x = rng.normal(size=(23, 50)).astype(np.float32)
    x[rng.random(23) < 0.6] = np.nan  # most rows hold no value, as in rep
    x[0, 5:9] = np.nan
    x[:, 20] = np.nan  # a step with no value at all
    arr = xr.DataArray(x, dims=("sensor", "time"), coords={"time": np.arange(50)})
    want = median_over(arr, "sensor").values
    for a in (arr, arr.chunk({"sensor": 5})):
        got = median_of_rows(a, "sensor")
        assert got.dims == ("time",) and isinstance(got.data, da.Array) == (a.chunks is not None)
        assert _same(got.values, want)
        np.testing.assert_array_equal(got["time"].values, np.arange(50))
