"""The composite index: bounded, directional, explainable (contributions add up)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from xarray.tests import raise_if_dask_computes

from workbench.integration.index import city_index, explain, load_index_spec
from workbench.integration.state import city_state


@pytest.fixture(scope="module")
def state(small_city):
    return city_state(small_city, freq="1h").compute()


@pytest.fixture(scope="module")
def index(state):
    return city_index(state).compute()


def test_state_has_every_system_with_units_completeness_and_source(small_city):
    with raise_if_dask_computes():
        st = city_state(small_city, freq="1h")
    assert dict(st["electric_load"].sizes) == {"zone": 4, "time": 14 * 24}
    for v in ("footfall", "service_requests", "traffic_speed", "data_traffic", "water_pressure", "electric_load", "no2"):
        assert st[v].attrs["units"] and st[v].attrs["long_name"] and st[v].attrs["source"].endswith(v)
        assert f"{v}_completeness" in st
    assert "geojson" in st.attrs and "population" in st.coords


def test_contributions_add_up_to_the_index(index):
    total = index["contribution"].sum("indicator")
    ok = index["index"].notnull()
    assert float(abs(total - index["index"]).where(ok).max()) < 1e-9
    lost = index["points_lost"].sum("indicator")
    assert float(abs(lost + index["index"] - 100).where(ok).max()) < 1e-9


def test_index_is_bounded_and_mostly_normal(index):
    v = index["index"].to_numpy()
    assert np.nanmin(v) >= 0 and np.nanmax(v) <= 100
    assert np.nanmedian(v) > 85  # a city is mostly normal
    for name in [n for n in index.data_vars if n.startswith("index_")]:
        s = index[name].to_numpy()
        assert np.nanmin(s) >= 0 and np.nanmax(s) <= 100


def test_index_stays_lazy(small_city):
    st = city_state(small_city, freq="1h")
    with raise_if_dask_computes():
        city_index(st)


def _toy(direction_values):
    t = pd.date_range("2026-07-06", periods=24 * 14, freq="1h")
    rng = np.random.default_rng(0)
    base = 100 + 10 * np.sin(2 * np.pi * np.arange(len(t)) / 24)
    load = base * (1 + 0.02 * rng.standard_normal((2, len(t))))
    speed = 50 * (1 + 0.02 * rng.standard_normal((2, len(t))))
    load[1, 100:104] *= direction_values["load"]
    speed[1, 100:104] *= direction_values["speed"]
    return xr.Dataset(
        {"electric_load": (("zone", "time"), load), "traffic_speed": (("zone", "time"), speed)},
        coords={"zone": ["Z01", "Z02"], "time": t},
    )


def test_direction_matters():
    # speed up is not bad (direction: low); speed down is
    up = city_index(_toy({"load": 1.0, "speed": 1.5}))
    down = city_index(_toy({"load": 1.0, "speed": 0.5}))
    assert float(up["index_transport"].sel(zone="Z02").isel(time=slice(100, 104)).min()) > 90
    assert float(down["index_transport"].sel(zone="Z02").isel(time=slice(100, 104)).max()) < 10
    # load is bad both ways
    for f in (0.3, 1.7):
        ix = city_index(_toy({"load": f, "speed": 1.0}))
        assert float(ix["index_energy"].sel(zone="Z02").isel(time=slice(100, 104)).max()) < 10


def test_explain_names_the_indicator_behind_a_low_index():
    ix = city_index(_toy({"load": 1.0, "speed": 0.5}))
    top = explain(ix, "Z02")
    assert top.iloc[0]["indicator"] == "traffic_speed"
    assert top.iloc[0]["points_lost"] > 0


def test_weights_override_and_renormalise():
    st = _toy({"load": 1.0, "speed": 0.5})
    ix = city_index(st, weights={"transport": 0.0})
    # with transport weighted out, the speed drop costs nothing: the index is the energy index
    assert float(abs(ix["index"] - ix["index_energy"]).max()) < 1e-9
    assert float(ix["contribution"].sel(indicator="traffic_speed").max()) == 0.0
    assert float(abs(ix["contribution"].sum("indicator") - ix["index"]).max()) < 1e-9


def test_bad_spec_is_refused():
    with pytest.raises(ValueError, match="z_ok"):
        load_index_spec({"method": {"z_ok": 5, "z_bad": 1}, "systems": {"energy": {"indicators": {}}}})
    with pytest.raises(ValueError, match="not a variable of"):
        load_index_spec({"systems": {"energy": {"indicators": {"footfall": {"direction": "both"}}}}})
