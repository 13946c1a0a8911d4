"""to_zones: equal to pandas to 1e-9, completeness, flags, normalisation, laziness."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from xarray.tests import raise_if_dask_computes

from workbench.analysis import to_zones

QC_ATTRS = {"flag_masks": [1, 2, 4, 8, 16, 32], "flag_meanings": "missing gap flatline spike out_of_range duplicate"}


@pytest.fixture(scope="module")
def transport(small_city):
    ds = small_city["transport"].to_dataset().compute()
    ds["traffic_flow"][1, 5:50] = np.nan
    ds["traffic_speed"][2, 100:110] = np.nan
    return ds


def _chunk(obj, n=3):
    """Chunk the data, keep the small zone coordinate in memory (as make_city and read_city give it)."""
    return obj.chunk({"sensor": n}).assign_coords(zone=("sensor", np.asarray(obj["zone"].values)))


def _pandas_rollup(da: xr.DataArray, how: str, *, scale=True):
    df = pd.DataFrame(da.values.T, index=da.indexes["time"], columns=da["sensor"].values)
    zone = pd.Series(da["zone"].values, index=da["sensor"].values)
    g = df.T.groupby(zone)
    n = zone.value_counts()
    mean = g.mean().T
    comp = g.count().T / n
    if how == "mean":
        val = mean
    elif scale:
        val = mean * n
    else:
        val = g.sum(min_count=1).T
    return val, comp


@pytest.mark.parametrize("chunked", [False, True])
def test_to_zones_equals_pandas(transport, chunked):
    ds = _chunk(transport) if chunked else transport
    with raise_if_dask_computes():
        z = to_zones(ds)
        z2 = to_zones(ds, scale_missing=False)
    for var, how in (("traffic_flow", "sum"), ("traffic_speed", "mean")):
        want, comp = _pandas_rollup(transport[var], how)
        got = z[var].sel(zone=want.columns.to_numpy()).transpose("time", "zone").values
        np.testing.assert_allclose(got, want.to_numpy(), atol=1e-9)
        np.testing.assert_allclose(z[f"{var}_completeness"].sel(zone=comp.columns.to_numpy()).transpose("time", "zone").values,
                                   comp.to_numpy(), atol=1e-12)
    want, _ = _pandas_rollup(transport["traffic_flow"], "sum", scale=False)
    np.testing.assert_allclose(z2["traffic_flow"].transpose("time", "zone").values, want.to_numpy(), atol=1e-9)
    assert z["traffic_flow"].dims == ("zone", "time")
    assert z["traffic_flow"].attrs["units"] == "1/h"
    assert "sensor: sum within zone" in z["traffic_flow"].attrs["cell_methods"]
    assert "to_zones(" in z["traffic_flow"].attrs["history"]


def test_dataarray_input_and_how_override(transport):
    da = transport["traffic_speed"]
    with raise_if_dask_computes():
        z = to_zones(_chunk(da, 4), how="sum")
    want, _ = _pandas_rollup(transport["traffic_speed"], "sum")
    np.testing.assert_allclose(z["traffic_speed"].transpose("time", "zone").values, want.to_numpy(), atol=1e-9)
    with pytest.raises(KeyError, match="not a registered variable"):
        to_zones(da.rename("mystery"))
    with pytest.raises(ValueError, match="must be 'sum' or 'mean'"):
        to_zones(da, how="median")


@pytest.mark.parametrize("chunked", [False, True])
def test_quality_flags_are_honoured(transport, chunked):
    ds = transport[["traffic_flow"]].copy()
    qc = xr.zeros_like(ds["traffic_flow"], dtype=np.uint8)
    qc[0, :10] = 8   # spike: excluded
    qc[3, :10] = 2   # gap (filled, value present): accepted
    qc[4, :10] = 6   # gap + flatline: excluded
    ds["traffic_flow_qc"] = qc.assign_attrs(QC_ATTRS)
    ds = _chunk(ds) if chunked else ds
    with raise_if_dask_computes():
        z = to_zones(ds)
    assert "traffic_flow_qc" not in z
    masked = transport["traffic_flow"].copy()
    masked[0, :10] = np.nan
    masked[4, :10] = np.nan
    want, comp = _pandas_rollup(masked, "sum")
    np.testing.assert_allclose(z["traffic_flow"].transpose("time", "zone").values, want.to_numpy(), atol=1e-9)
    zc = z["traffic_flow_completeness"].compute()
    z0 = str(transport["zone"].values[0])
    assert float(zc.sel(zone=z0).isel(time=0)) < 1.0
    np.testing.assert_allclose(zc.transpose("time", "zone").values, comp.to_numpy(), atol=1e-12)
    unflagged = to_zones(ds, flags=False)["traffic_flow_completeness"].compute()
    assert float(unflagged.sel(zone=z0).isel(time=0)) == 1.0


def test_normalisation_and_zone_table(small_city):
    ds = small_city["energy"].to_dataset()
    zones = small_city["zones"].to_dataset()
    with raise_if_dask_computes():
        plain = to_zones(ds, zones=zones)
        cap = to_zones(ds, zones=zones, normalize="per_capita")
        km2 = to_zones(ds, zones=zones, normalize="per_km2")
    np.testing.assert_allclose(cap["electric_load"].values, (plain["electric_load"] / zones["population"]).values, rtol=1e-12)
    np.testing.assert_allclose(km2["electric_load"].values, (plain["electric_load"] / zones["area_km2"]).values, rtol=1e-12)
    assert km2["electric_load"].attrs["units"] == "(kW)/km2"
    assert "per resident" in cap["electric_load"].attrs["long_name"]
    assert list(plain["zone"].values) == list(zones["zone"].values)
    assert "zone_name" in plain.coords
    with pytest.raises(ValueError, match="needs the zone table"):
        to_zones(ds, normalize="per_capita")
    # a zone without sensors: all NaN, completeness 0
    extra = xr.concat([zones, zones.isel(zone=[0]).assign_coords(zone=["Z99"])], "zone")
    z = to_zones(ds, zones=extra)
    assert bool(z["electric_load"].sel(zone="Z99").isnull().all())
    assert float(z["electric_load_completeness"].sel(zone="Z99").max()) == 0.0


def test_to_zones_from_zarr_with_lazy_zone_coordinate(small_city, tmp_path):
    """PERFORMANCE.md pitfall 4: the zone coordinate read from Zarr is loaded, not grouped lazily."""
    from workbench.io import read_city, write_city

    path = tmp_path / "city.zarr"
    write_city(small_city, path)
    city = read_city(path)
    z = to_zones(city["people"].to_dataset())
    want = to_zones(small_city["people"].to_dataset())
    xr.testing.assert_allclose(z["footfall"].compute(), want["footfall"].compute())


def test_lazy_zone_coordinate_is_loaded_once(transport):
    """A dask-backed zone coordinate costs exactly one small compute (the labels), nothing else."""
    ds = transport.chunk({"sensor": 3})
    assert ds["zone"].chunks is not None
    with raise_if_dask_computes(max_computes=1):
        z = to_zones(ds)
    assert z["traffic_flow"].chunks is not None


@pytest.mark.parametrize("n", [1, 2, 5, 13])
def test_values_do_not_depend_on_the_sensor_chunks(transport, n):
    """One task adds a group of consecutive sensor chunks (1 → many groups of many chunks)."""
    ds = transport[["traffic_flow"]].copy()
    qc = xr.zeros_like(ds["traffic_flow"], dtype=np.uint8)
    qc[::3, ::7] = 8
    ds["traffic_flow_qc"] = qc.assign_attrs(QC_ATTRS)
    whole = to_zones(ds)
    with raise_if_dask_computes():
        z = to_zones(_chunk(ds, n))
    assert len(_chunk(ds, n)["traffic_flow"].chunks[0]) == -(-ds.sizes["sensor"] // n)
    for name in ("traffic_flow", "traffic_flow_completeness"):
        np.testing.assert_allclose(z[name].values, whole[name].values, rtol=1e-13, atol=1e-9)
    masked = transport["traffic_flow"].where(qc == 0)
    want, _ = _pandas_rollup(masked, "sum")
    np.testing.assert_allclose(z["traffic_flow"].transpose("time", "zone").values, want.to_numpy(), atol=1e-9)
