"""Readers against real published payloads in ../shared/conformance (skipped when absent).

Values asserted here were checked by hand against the files.
"""

from __future__ import annotations

import pytest

from _io_helpers import reconciles
from workbench.io import ReadError, read_observations

pytestmark = pytest.mark.conformance

BLOOMINGTON_ZONES = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "properties": {"zone": "west"}, "geometry": {"type": "Polygon", "coordinates": [[[-86.6, 39.1], [-86.52, 39.1], [-86.52, 39.2], [-86.6, 39.2], [-86.6, 39.1]]]}},
    {"type": "Feature", "properties": {"zone": "east"}, "geometry": {"type": "Polygon", "coordinates": [[[-86.52, 39.1], [-86.4, 39.1], [-86.4, 39.2], [-86.52, 39.2], [-86.52, 39.1]]]}},
]}


def test_aot_chicago_digest(conformance_dir):
    cube, r = read_observations(conformance_dir / "longform-csv" / "aot_chicago_data_head2500.csv")
    assert reconciles(r) and (r.n_in, r.n_accepted, r.reasons["unknown_variable"]) == (2499, 1557, 942)
    t = cube["environment"]["air_temperature"]
    assert t.sel(sensor="001e061135cb:bmp180", time="2018-08-25T00:00:00").item() == 19.4
    assert t.sel(sensor="001e061135cb:htu21d", time="2018-08-25T00:00:00").item() == 19.42
    assert t.sizes["sensor"] == 99


def test_frost_geojson_result_format(conformance_dir):
    cube, r = read_observations(conformance_dir / "sensorthings" / "frost_docs_datastreams_expand_observations_resultFormat_GeoJSON.json")
    assert (r.n_in, r.n_accepted, r.reasons["unknown_variable"]) == (4, 2, 2)  # SO2 is not registered
    no2 = cube["environment"]["no2"].sel(sensor="STA-FR20019")
    assert no2.sel(time="2020-03-30T13:00").item() == 6.0 and no2.sel(time="2020-03-30T12:00").item() == 5.8
    assert cube["environment"]["lat"].item() == pytest.approx(45.75836)


def test_frost_thing_expand_with_nested_nextlink(conformance_dir):
    cube, r = read_observations(conformance_dir / "sensorthings" / "frost_docs_thing_expand_datastreams_observations_count_nextlink.json",
                                mapping={"Temperature measurement": "air_temperature"})
    assert (r.n_in, r.n_accepted, r.reasons["unknown_variable"]) == (2, 1, 1)
    assert cube["environment"]["air_temperature"].sel(sensor="17", time="2020-04-10T16:00").item() == 4.6


def test_spec_data_array_and_multidatastream_offsets(conformance_dir):
    sta = conformance_dir / "sensorthings"
    cube, r = read_observations(sta / "spec_18-088_datastream_observations_dataArray.json", mapping={"Datastreams(1)": "air_temperature"})
    assert (r.n_in, r.n_accepted) == (3, 3)
    assert cube["environment"]["air_temperature"].sel(sensor="1").values.tolist() == [20.0, 30.0, 0.0]
    cube, r = read_observations(sta / "spec_18-088_multidatastream_observations_dataArray.json", mapping={"MultiDatastreams(1)[0]": "air_temperature"})
    assert (r.n_in, r.n_accepted, r.reasons["unknown_variable"]) == (9, 3, 6)
    t = cube["environment"]["air_temperature"]
    assert str(t["time"].values[0])[:19] == "2010-12-23T18:20:00"  # -0700 without a colon
    assert t.values.ravel().tolist() == [10.2, 11.3, 9.8]


def test_spec_entities_quirks(conformance_dir):
    sta = conformance_dir / "sensorthings"
    _, r = read_observations(sta / "spec_18-088_observation_entity.json")
    assert (r.n_in, r.reasons["missing_sensor"]) == (1, 1)  # the navigation link names no Datastream id
    for name in ("52n_things_expanded_two_concatenated_objects.json", "spec_18-088_things_expand_datastreams.json", "spec_18-088_datastream_entity.json"):
        cube, r = read_observations(sta / name)  # 52N: objects joined by commas are read leniently
        assert r.n_in == 0 and not cube.children


def test_frost_csv_result_format(conformance_dir):
    _, r = read_observations(conformance_dir / "sensorthings" / "frost_docs_observations_resultFormat_CSV_interval_phenomenonTime.csv")
    assert r.format == "long-csv" and r.n_in == 28 and r.reasons["unknown_variable"] == 28  # population density


def test_smart_data_models_air_quality(conformance_dir):
    ngsi = conformance_dir / "ngsi-ld"
    cube, r = read_observations(ngsi / "sdm_AirQualityObserved_example-normalized.jsonld")
    assert (r.n_in, r.n_accepted) == (19, 3)
    env = cube["environment"]
    assert env["no2"].item() == 69 and env["air_temperature"].item() == 12.2 and env["rainfall"].item() == 0
    assert str(env["time"].values[0])[:19] == "2016-03-15T11:00:00" and env["lon"].item() == pytest.approx(-3.712247222222222)
    _, r = read_observations(ngsi / "sdm_AirQualityObserved_example-normalized.json")  # NGSIv2
    assert r.reasons["non_numeric_value"] == 1  # precipitation: false
    cube, r = read_observations(ngsi / "sdm_AirQualityObserved_example.jsonld")
    assert (r.n_in, r.n_accepted) == (14, 3)


def test_smart_data_models_traffic_interval_and_typed_literal(conformance_dir):
    for name in ("sdm_TrafficFlowObserved_example.jsonld", "sdm_TrafficFlowObserved_example-normalized.jsonld"):
        cube, r = read_observations(conformance_dir / "ngsi-ld" / name)
        tr = cube["transport"]
        assert r.n_accepted == 2 and tr["traffic_flow"].item() == 197 and tr["traffic_speed"].item() == 52.6
        assert str(tr["time"].values[0])[:19] == "2016-12-07T11:10:00"


def test_temporal_brokers(conformance_dir):
    ngsi = conformance_dir / "ngsi-ld"
    _, r = read_observations(ngsi / "mintaka_temporal_temporalValues_entity.json")
    assert (r.n_in, r.reasons["unknown_variable"]) == (3, 3)  # heartRate is not a city variable
    cube, r = read_observations(ngsi / "stellio_temporal_simplified_beehive.jsonld", mapping={"incoming": "footfall"})
    assert r.n_accepted == 3
    assert cube["people"]["footfall"].values.ravel().tolist() == [1550, 1543, 1600]
    _, r = read_observations(ngsi / "stellio_temporal_aggregated_beehive.jsonld")
    assert r.n_in == 0  # aggregations are summaries, not observations


def test_cf_pocean_files(conformance_dir):
    cf = conformance_dir / "cf-netcdf"
    cube, r = read_observations(cf / "pocean_timeseries_om-multiple.nc")
    assert (r.n_in, r.n_accepted, r.reasons["unknown_variable"]) == (2000, 1000, 1000)  # humidity in "Percent"
    t = cube["environment"]["air_temperature"]
    assert t.sizes == {"sensor": 10, "time": 100}
    assert t.sel(sensor="Station-0", time="1990-01-01T00:00").item() == pytest.approx(18.618036, abs=1e-5)
    _, r = read_observations(cf / "pocean_timeseries_im-multiple.nc")
    assert (r.n_in, r.n_accepted, r.reasons["out_of_range"]) == (400, 144, 56)
    cube, r = read_observations(cf / "pocean_timeseries_om-single.nc")
    assert r.n_accepted == 100 and cube["environment"].sizes["sensor"] == 1


def test_cf_cdl_fragments_are_read_errors(conformance_dir):
    with pytest.raises(ReadError, match="ncgen"):
        read_observations(conformance_dir / "cf-netcdf" / "cf_conventions_apph_example_H6_timeseries_contiguous_ragged_fragment.cdl")


def test_open311_real_cities(conformance_dir):
    o = conformance_dir / "open311"
    cube, r = read_observations(o / "bloomington_requests.json", zones=BLOOMINGTON_ZONES)
    assert (r.n_in, r.n_accepted, r.reasons["no_zone"]) == (21, 13, 8)  # 2 null and 6 0/0 locations
    sr = cube["services"]["service_requests"]
    assert sr.sel(sensor="east", time="2012-05-23T16:00").item() == 4
    cube, r = read_observations(o / "toronto_requests.xml")
    assert r.n_accepted == 2
    assert cube["services"]["service_requests"].sel(time="2018-07-30T04:00").item() == 2  # 00:01 -04:00
    with pytest.raises(ReadError, match="line 7"):
        read_observations(o / "spec_georeport_v2_get_requests_example_leading_zero_invalid.json")
    _, r = read_observations(o / "spec_georeport_v2_get_requests_example.xml")
    assert (r.n_in, r.n_accepted) == (2, 2)
