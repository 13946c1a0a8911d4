from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _io_helpers import FIXTURES, assert_same_cube, reconciles, sample_cube
from workbench.io import ReadError, read_observations, read_sensorthings, to_sensorthings

PAGES = FIXTURES / "sensorthings_pages"


def test_things_expand_fixture():
    cube, r = read_observations(FIXTURES / "sensorthings_things_expand.json")
    assert (r.n_in, r.n_accepted, r.reasons["non_numeric_value"]) == (6, 5, 1)
    load = cube["energy"]["electric_load"]
    assert load.sensor.values.tolist() == ["1"] and load["zone"].item() == "Z01" and load["lon"].item() == 10.02
    # interval phenomenonTime -> its start; 01:00+02:00 -> 23:00 UTC the day before
    assert load.sel(time="2024-07-01T00:00").item() == pytest.approx(1520.5)
    assert load.sel(time="2024-06-30T23:00").item() == pytest.approx(1480.0)
    assert cube["environment"]["air_temperature"].sel(time="2024-07-01T01:00").item() == pytest.approx((67.1 - 32) * 5 / 9)


def test_data_array_needs_a_label_mapping():
    _, r = read_sensorthings(FIXTURES / "sensorthings_dataarray.json")
    assert r.reasons["unknown_variable"] == 4
    cube, r = read_sensorthings(FIXTURES / "sensorthings_dataarray.json", variables={"Datastreams(5)": "water_pressure"})
    assert (r.n_accepted, r.reasons["non_numeric_value"]) == (3, 1)
    assert cube["water"]["water_pressure"].sel(sensor="5").values.tolist() == [3.5, 4.25, 4.0]


def test_roundtrip_through_sensorthings_payload(tmp_path):
    cube = sample_cube(seed=1)
    payload = to_sensorthings(cube)
    (tmp_path / "p.json").write_text(json.dumps(payload), encoding="utf-8")
    back, r = read_observations(tmp_path / "p.json")
    assert r.n_quarantined == 0
    assert_same_cube(cube, back)


def test_invalid_json_is_one_clear_error(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{"value": [ {"@iot.id": 1, ', encoding="utf-8")
    with pytest.raises(ReadError, match=r"bad.json: not valid JSON at line 1"):
        read_sensorthings(p)


class _Server:
    """A real HTTP server on loopback serving the recorded pages, with {base} filled in."""

    def __init__(self):
        routes = {
            "/v1.1/Datastreams": "page1.json",
            "/v1.1/Datastreams?$skip=2": "page2.json",
            "/v1.1/Datastreams(2)/Observations?$skip=1": "ds2_obs_page2.json",
            "/v1.1/Datastreams(2)/Observations?$skip=2": "ds2_obs_page3.json",
        }
        self.hits: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.hits.append(self.path)
                parts = urlsplit(self.path)
                key = parts.path + ("?" + parts.query.split("&")[0] if parts.query.startswith("$skip") else "")
                name = routes.get(key)
                if name is None or self.path.startswith("/broken"):
                    body, code = (b"not json", 200) if self.path.startswith("/broken") else (b'{"code": 404}', 404)
                else:
                    body = (PAGES / name).read_text(encoding="utf-8").replace("{base}", outer.base).encode()
                    code = 200
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_live_client_follows_both_kinds_of_nextlink():
    with _Server() as srv:
        cube, r = read_observations(f"{srv.base}/v1.1/Datastreams?$expand=Thing($expand=Locations),ObservedProperty,Observations")
    assert len(srv.hits) == 4  # page 1, nested page 2 and 3 of Datastream 2, page 2
    assert r.format == "sensorthings-http" and len(r.sha256) == 64
    assert (r.n_in, r.n_accepted, r.n_quarantined) == (7, 7, 0)
    flow = cube["water"]["water_flow"].sel(sensor="2")
    # 25 l/s = 90 m3/h; 26.5 l/s; 24 l/s at 02:00-01:00 = 03:00 UTC
    assert flow.sel(time="2024-07-01T00:00").item() == pytest.approx(90.0)
    assert flow.sel(time="2024-07-01T01:00").item() == pytest.approx(95.4)
    assert flow.sel(time="2024-07-01T03:00").item() == pytest.approx(86.4)
    comm = cube["communication"]
    assert comm["connected_devices"].sel(sensor="1", time="2024-07-01T01:00").item() == 1320
    assert comm["data_traffic"].sel(sensor="1", time="2024-07-01T00:00").item() == 120.5
    assert comm["zone"].item() == "Z01"


def test_live_client_errors_are_clear():
    with _Server() as srv:
        with pytest.raises(ReadError, match="HTTP 404"):
            read_sensorthings(f"{srv.base}/v1.1/Nothing")
        with pytest.raises(ReadError, match="not valid JSON"):
            read_sensorthings(f"{srv.base}/broken")
    with pytest.raises(ReadError, match="request failed"):
        read_sensorthings("http://127.0.0.1:9/v1.1/Datastreams", timeout=2)


_json_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                         st.text(max_size=6), st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01T02:00:00+02:00", "2024-01-01T00:00:00Z/2024-01-01T01:00:00Z", "°F", "W"]))
_obs = st.one_of(st.fixed_dictionaries({"phenomenonTime": _json_scalar, "result": _json_scalar}), _json_scalar, st.lists(_json_scalar, max_size=2))


@settings(max_examples=50, deadline=None)
@given(
    streams=st.lists(st.fixed_dictionaries({
        "@iot.id": st.one_of(st.integers(0, 3), st.none()),
        "name": st.sampled_from(["power", "temperature", "rain", "nonsense", ""]),
        "unitOfMeasurement": st.fixed_dictionaries({"symbol": _json_scalar}),
        "Observations": st.one_of(st.lists(_obs, max_size=5), _json_scalar),
    }), max_size=4),
    cut=st.one_of(st.none(), st.integers(0, 300)),
)
def test_property_corrupted_payloads_reconcile_or_read_error(tmp_path_factory, streams, cut):
    text = json.dumps({"value": streams})
    if cut is not None:
        text = text[:cut]
    p = tmp_path_factory.mktemp("sta") / "page.json"
    p.write_text(text, encoding="utf-8")
    try:
        cube, r = read_sensorthings(p)
    except ReadError as exc:
        assert "page.json" in str(exc)
        return
    assert reconciles(r)
    # each Observation is a record; an Observations member that is not a list is one malformed record
    n_obs = sum(len(s["Observations"]) if isinstance(s["Observations"], list) else 1 for s in streams)
    assert r.n_in == n_obs
    assert r.reasons["malformed_record"] == sum(not isinstance(s["Observations"], list) for s in streams) + sum(
        not isinstance(o, dict) for s in streams if isinstance(s["Observations"], list) for o in s["Observations"])
