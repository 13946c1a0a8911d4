"""Zarr v3 and NetCDF round trips are identical; writes are atomic."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from workbench.io import read_city, write_city
from workbench.io.store import StoreError


def _with_flags(city: xr.DataTree) -> xr.DataTree:
    """Add a CF flag variable, as perception would."""
    ds = city["water"].to_dataset()
    qc = xr.zeros_like(ds["water_flow"], dtype=np.uint8)
    qc[0, :5] = 4
    ds["water_flow_qc"] = qc.assign_attrs(
        flag_masks=np.array([1, 2, 4, 8, 16, 32], dtype=np.uint8),
        flag_meanings="missing gap flatline spike out_of_range duplicate",
        long_name="water flow quality flags",
    )
    out = city.copy()
    out["water"] = xr.DataTree(ds)
    return out


@pytest.mark.parametrize("name", ["city.zarr", "city.nc"])
def test_round_trip_is_identical(small_city, tmp_path, name):
    city = _with_flags(small_city)
    path = write_city(city, tmp_path / name)
    back = read_city(path)
    assert back["energy"]["electric_load"].chunks is not None  # lazy on read
    xr.testing.assert_identical(city.compute(), back.compute())
    assert back["water"]["water_flow_qc"].dtype == np.uint8
    assert back["zones"].attrs["geojson"] == city["zones"].attrs["geojson"]
    assert back.attrs["synth_params"] == city.attrs["synth_params"]


def test_zarr_store_is_v3_one_group_per_node(small_city, tmp_path):
    import json

    path = write_city(small_city, tmp_path / "c.zarr")
    meta = json.loads((path / "zarr.json").read_text())
    assert meta["zarr_format"] == 3 and meta["node_type"] == "group"
    for node in ("energy", "water", "zones"):
        assert json.loads((path / node / "zarr.json").read_text())["node_type"] == "group"


def _failing_city(city: xr.DataTree) -> xr.DataTree:
    ds = city["energy"].to_dataset()

    def boom(block):
        raise RuntimeError("disk on fire")

    bad = da.map_blocks(boom, ds["electric_load"].data, dtype=float)
    ds["electric_load"] = (("sensor", "time"), bad, ds["electric_load"].attrs)
    out = city.copy()
    out["energy"] = xr.DataTree(ds)
    return out


def test_a_crashed_write_leaves_nothing_behind(small_city, tmp_path):
    target = tmp_path / "c.zarr"
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_city(_failing_city(small_city), target)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_chunks_still_being_written_when_one_fails_leave_nothing_behind(tmp_path):
    """On the threaded scheduler dask raises at the first failed chunk while other threads are
    still writing theirs into the temporary store: write_city waits for them before it
    removes the temporary store, so no straggler re-creates it afterwards."""
    import time

    from workbench._options import scheduler_context
    from workbench.synth import make_city

    city = make_city(zones=2, sensors_per_system=4, days=2, seed=1, chunks={"sensor": 2})
    ds = city["energy"].to_dataset()

    def slow_or_boom(block, block_info=None):
        if block_info[0]["chunk-location"][0] == 0:
            raise RuntimeError("disk on fire")
        time.sleep(0.5)  # still writing when the first chunk fails
        return block

    ds["electric_load"] = ds["electric_load"].copy(data=ds["electric_load"].data.map_blocks(slow_or_boom, dtype=float))
    city["energy"] = xr.DataTree(ds)
    with pytest.raises(RuntimeError, match="disk on fire"), scheduler_context("threads"):
        write_city(city, tmp_path / "c.zarr")
    time.sleep(1.0)  # what a straggler would have written by now
    assert list(tmp_path.iterdir()) == []


def test_a_crashed_overwrite_keeps_the_old_store(small_city, tmp_path):
    target = write_city(small_city, tmp_path / "c.zarr")
    before = read_city(target)["energy"]["electric_load"].values
    with pytest.raises(RuntimeError):
        write_city(_failing_city(small_city), target)
    np.testing.assert_array_equal(read_city(target)["energy"]["electric_load"].values, before)
    assert [p.name for p in tmp_path.iterdir()] == ["c.zarr"]


def test_read_errors_are_one_clear_sentence(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such city store"):
        read_city(tmp_path / "missing.zarr")
    with pytest.raises(StoreError, match="unknown store type"):
        read_city(tmp_path / "city.csv")
    empty = tmp_path / "empty.zarr"
    xr.Dataset({"x": ("a", [1, 2])}).to_zarr(empty, zarr_format=3, consolidated=False)
    with pytest.raises(StoreError, match="holds no system node"):
        read_city(empty)
    junk = tmp_path / "junk.nc"
    junk.write_text("not a netcdf file")
    with pytest.raises(StoreError, match="cannot be opened as a netcdf city store"):
        read_city(junk)


def test_series_are_stored_with_shuffled_lz4(small_city, tmp_path):
    """Sensor series use Blosc LZ4 + byte shuffle (docs/scale.md rule 7), also when a read store is rewritten."""
    import zarr

    first = write_city(small_city, tmp_path / "a.zarr")
    again = write_city(read_city(first), tmp_path / "b.zarr")
    for path in (first, again):
        (codec,) = zarr.open_array(str(path / "energy" / "electric_load"), mode="r").compressors
        assert (type(codec).__name__, codec.cname.value, codec.shuffle.value) == ("BloscCodec", "lz4", "shuffle")
        assert codec.typesize == 8


def test_read_city_puts_nodes_and_variables_in_one_fixed_order(small_city, tmp_path, monkeypatch):
    """Zarr v3 lists a group's members in file-system order: read_city must not pass it on
    (the anomaly table's rows and the evidence incidents cite followed it)."""
    from workbench import registry

    path = tmp_path / "c.zarr"
    write_city(small_city, path)
    opened = xr.open_datatree

    def shuffled(*args, **kwargs):  # the listing order reversed, nodes and variables alike
        tree = opened(*args, **kwargs)
        nodes = {"/": tree.to_dataset(inherit=False)}
        for name in reversed(list(tree.children)):
            ds = tree[name].to_dataset(inherit=False)
            nodes[f"/{name}"] = ds[list(reversed(list(ds.data_vars)))]
        return xr.DataTree.from_dict(nodes)

    monkeypatch.setattr(xr, "open_datatree", shuffled)
    tree = read_city(path)
    systems = [s for s in registry.SYSTEMS if s in small_city.children]
    assert list(tree.children)[:len(systems)] == systems
    for s in systems:
        assert list(tree[s].ds.data_vars) == [v for v in registry.variables_of(s) if v in tree[s].ds.data_vars]
    assert tree.attrs["synth_params"] == small_city.attrs["synth_params"]
    xr.testing.assert_identical(tree["energy"].to_dataset().compute(), read_city(path)["energy"].to_dataset().compute())
