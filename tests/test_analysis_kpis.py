"""KPIs: the registry validates, values equal plain computations, lazy, statuses."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from xarray.tests import raise_if_dask_computes

from workbench import registry
from workbench.analysis import kpi_status, kpis, load_kpis, to_zones
from workbench.analysis.kpis import FORMULAS, _backlog_kernel, _check

REQUIRED = {"peak_to_average_load", "night_flow_ratio", "congestion_index", "network_availability",
            "service_request_backlog", "pm25_exceedance_hours"}


def test_registry_loads_and_covers_the_issue():
    table = load_kpis()
    assert REQUIRED <= set(table)
    for k in table.values():
        assert k["formula"] in FORMULAS
        assert registry.system_of(k["variable"]) == k["system"]


@pytest.mark.parametrize("patch,msg", [
    (lambda k: k.update(formula="__import__('os')"), "formula must be one of"),
    (lambda k: k.update(variable="nope"), "not a registered variable"),
    (lambda k: k.update(system="water"), "belongs to"),
    (lambda k: k.update(good="up"), "good must be"),
    (lambda k: k.update(thresholds={"warning": 1.0, "critical": 0.5}), "from good to bad"),
    (lambda k: k.update(params={"hours": 3}), "takes"),
    (lambda k: k.update(units="bananas"), "registry/kpis.yml"),
    (lambda k: k.pop("target"), "field 'target'"),
])
def test_registry_rejects_broken_entries(patch, msg):
    data = copy.deepcopy(registry.load_yaml("kpis.yml"))
    patch(data["kpis"]["peak_to_average_load"])
    with pytest.raises(registry.RegistryError, match=msg):
        _check(data)


@pytest.fixture(scope="module")
def computed(small_city):
    with raise_if_dask_computes(max_computes=0):
        k = kpis(small_city, freq="1D")
    return k, k.compute()


def test_kpis_lazy_and_metadata(computed):
    lazy, k = computed
    assert REQUIRED <= set(k.data_vars)
    for v in REQUIRED:
        assert lazy[v].chunks is not None
        assert k[v].dims == ("zone", "time") and k.sizes["time"] == 14
        for a in ("units", "long_name", "good", "target", "threshold_warning", "history"):
            assert a in k[v].attrs
    assert k["pm25_exceedance_hours"].attrs["units"] == "h"


def test_values_equal_plain_computations(small_city, computed):
    _, k = computed
    load = to_zones(small_city["energy"].to_dataset())["electric_load"].compute()
    df = load.to_pandas().T
    daily = df.resample("1D")
    want = daily.max() / daily.mean()
    np.testing.assert_allclose(k["peak_to_average_load"].transpose("time", "zone").values, want.to_numpy(), atol=1e-9)
    pm = to_zones(small_city["environment"].to_dataset())["pm25"].compute().to_pandas().T
    hours = (pm.resample("1h").mean() > 25.0).resample("1D").sum()
    np.testing.assert_allclose(k["pm25_exceedance_hours"].transpose("time", "zone").values, hours.to_numpy())
    flow = to_zones(small_city["water"].to_dataset())["water_flow"].compute().to_pandas().T
    night = flow[(flow.index.hour >= 2) & (flow.index.hour < 5)].resample("1D").mean() / flow.resample("1D").mean()
    np.testing.assert_allclose(k["night_flow_ratio"].transpose("time", "zone").values, night.to_numpy(), atol=1e-9)
    assert float(k["network_availability"].min()) >= 0 and float(k["network_availability"].max()) <= 1


def test_backlog_is_lindley_queue():
    a = np.array([[5.0, 0.0, 0.0, 9.0, np.nan, 1.0]])
    got = _backlog_kernel(a, 1.0)  # capacity = mean arrivals = 3
    b, want = 0.0, []
    for v in a[0]:
        if not np.isnan(v):
            b = max(0.0, b + v - 3.0)
        want.append(b)
    np.testing.assert_allclose(got[0], want)


@pytest.mark.parametrize("chunked", [False, True])
def test_backlog_is_the_queue_at_each_period_end(chunked):
    """Daily backlog = the queue at the last step of each day, gaps in the arrivals included."""
    t = pd.date_range("2026-01-05", periods=96 * 3, freq="15min")
    rng = np.random.default_rng(3)
    a = rng.gamma(2.0, 1.0, (2, t.size))
    a[0, 95] = a[1, 100:300] = np.nan  # a gap at a day's last step and one over a whole day
    x = xr.DataArray(a, dims=("zone", "time"), coords={"time": t})
    got = FORMULAS["backlog"](x.chunk({"zone": 1}) if chunked else x, freq="1D")
    queue = pd.DataFrame(_backlog_kernel(a * 0.25, 1.2).T, index=t)
    want = queue.groupby(t.normalize()).nth(-1)
    np.testing.assert_allclose(got.transpose("time", "zone").values, want.to_numpy(), atol=1e-12)


def test_water_leak_raises_night_flow_ratio():
    """An event-free twin has a lower night-flow ratio in leak zone-days than the city with events."""
    from workbench.synth import ground_truth, make_city

    city = make_city(zones=6, sensors_per_system=12, days=28, seed=5)
    twin = make_city(zones=6, sensors_per_system=12, days=28, seed=5, events=False)
    ev, _ = ground_truth(city)
    leaks = ev[(ev.kind == "water_leak") & (ev.system == "water")]
    assert len(leaks)
    k = kpis(city, ids=["night_flow_ratio"])["night_flow_ratio"].compute()
    k0 = kpis(twin, ids=["night_flow_ratio"])["night_flow_ratio"].compute()
    diffs = []
    for r in leaks.itertuples():
        day = pd.Timestamp(r.start).normalize()
        if (pd.Timestamp(r.end) - pd.Timestamp(r.start)) >= pd.Timedelta("1D"):
            diffs.append(float(k.sel(zone=r.zone, time=day + pd.Timedelta("1D")) - k0.sel(zone=r.zone, time=day + pd.Timedelta("1D"))))
    if not diffs:
        pytest.skip("no leak lasting a whole day in this city")
    assert np.mean(diffs) > 0


def test_status_codes(computed):
    _, k = computed
    s = kpi_status(k)
    ratio = k["peak_to_average_load"]
    want = (ratio >= 1.8).astype(float) + (ratio >= 2.2).astype(float)
    xr.testing.assert_equal(s["peak_to_average_load"].drop_attrs(), want.drop_attrs())
    av = k["network_availability"]
    want = (av <= 0.99).astype(float) + (av <= 0.95).astype(float)
    xr.testing.assert_equal(s["network_availability"].drop_attrs(), want.where(av.notnull()).drop_attrs())
    with pytest.raises(KeyError, match="unknown KPI"):
        kpis(xr.DataTree(), ids=["nope"])
