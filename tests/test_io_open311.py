from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from _io_helpers import FIXTURES, reconciles
from workbench.io import ReadError, read_observations, read_open311
from workbench.io.open311 import point_in_polygon

ZONES = json.loads((FIXTURES / "zones.geojson").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", ["open311_requests.json", "open311_requests.xml"])
def test_fixture_counts_per_zone_and_hour(name):
    cube, r = read_observations(FIXTURES / name, zones=ZONES)
    assert (r.n_in, r.n_accepted, r.reasons["no_zone"], r.reasons["unparseable_time"]) == (8, 4, 3, 1)
    sr = cube["services"]["service_requests"]
    assert sr.attrs["units"] == "1/h" and sr.dims == ("sensor", "time")
    assert sr.sensor.values.tolist() == ["Z01", "Z02"]
    # 08:05 and 08:40 +02:00 -> 06:00 UTC in Z01; 06:59:59Z in Z02; 09:10+02:00 -> 07:00 in Z02
    assert sr.sel(time="2024-07-01T06:00").values.tolist() == [2.0, 1.0]
    assert sr.sel(time="2024-07-01T07:00").values.tolist() == [0.0, 1.0]
    assert cube["services"]["zone"].values.tolist() == ["Z01", "Z02"]
    assert cube["services"]["lat"].values.tolist() == pytest.approx([50.025, 50.025])


def test_zones_node_with_geojson_attr():
    node = xr.Dataset(attrs={"geojson": json.dumps(ZONES)})
    cube, r = read_open311(FIXTURES / "open311_requests.json", zones=node)
    assert r.n_accepted == 4 and cube["services"]["service_requests"].sum().item() == 4


def test_without_zones_counts_city_wide():
    cube, r = read_open311(FIXTURES / "open311_requests.json")
    assert (r.n_accepted, r.reasons["unparseable_time"]) == (7, 1)
    assert cube["services"]["sensor"].values.tolist() == ["city"]


def test_point_in_polygon_with_hole():
    outer = np.array([[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]], float)
    hole = np.array([[1, 1], [3, 1], [3, 3], [1, 3], [1, 1]], float)
    inside = point_in_polygon(np.array([0.5, 2.0, 5.0, 3.5]), np.array([0.5, 2.0, 1.0, 3.9]), [outer, hole])
    assert inside.tolist() == [True, False, False, True]


def test_roundtrip_counts_to_requests_and_back():
    hours = pd.date_range("2024-07-01", periods=4, freq="h")
    counts = {"Z01": [2, 0, 1, 3], "Z02": [0, 1, 0, 2]}
    centre = {"Z01": (50.02, 10.02), "Z02": (50.02, 10.07)}
    reqs = [
        {"service_request_id": f"{z}-{h}-{k}", "service_name": "Pothole", "requested_datetime": (hours[h] + pd.Timedelta(minutes=7 * k)).strftime("%Y-%m-%dT%H:%M:%SZ"),
         "lat": centre[z][0], "long": centre[z][1]}
        for z, cs in counts.items() for h, c in enumerate(cs) for k in range(c)
    ]
    cube, r = read_open311(reqs, zones=ZONES)
    assert r.n_accepted == 9
    got = cube["services"]["service_requests"].to_pandas()
    assert got.loc["Z01"].tolist() == counts["Z01"] and got.loc["Z02"].tolist() == counts["Z02"]


def test_invalid_json_names_line(tmp_path):
    p = tmp_path / "requests.json"
    p.write_text('[{"service_code":006}]', encoding="utf-8")
    with pytest.raises(ReadError, match="requests.json: not valid JSON at line 1"):
        read_observations(p, format="open311")


@settings(max_examples=50, deadline=None)
@given(reqs=st.lists(st.one_of(
    st.fixed_dictionaries({
        "requested_datetime": st.one_of(st.none(), st.text(max_size=6), st.sampled_from(["2024-07-01T08:00:00+02:00", "2024-07-01T06:30:00Z"])),
        "lat": st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.just(0), st.text(max_size=3)),
        "long": st.one_of(st.none(), st.floats(49, 51), st.just(0), st.just(10.03)),
    }),
    st.integers(), st.text(max_size=3)), max_size=10))
def test_property_corrupted_requests_reconcile(reqs):
    cube, r = read_open311(reqs, zones=ZONES)
    assert reconciles(r) and r.n_in == len(reqs)
    total = cube["services"]["service_requests"].sum().item() if "services" in cube.children else 0
    assert total == r.n_accepted
