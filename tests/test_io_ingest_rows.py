"""Long CSV ingest: rows numbered as in the file, pieces cut at record ends, and the Arrow
column-wise path agreeing with the row-frame path of the shared builder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _io_helpers import assert_same_cube, reconciles, sample_cube
from workbench.io import read_long, to_long
from workbench.io._build import Collector
from workbench.io.longform import _pieces


def _write(tmp_path, text: bytes):
    p = tmp_path / "x.csv"
    p.write_bytes(text)
    return p


def test_rows_after_a_malformed_record_keep_their_file_numbers(tmp_path):
    p = _write(tmp_path, (
        b"sensor,time,variable,value,unit\n"
        b"s1,2024-01-01T00:00Z,electric_load,3,kW\n"          # 1
        b"s1,2024-01-01T01:00Z,electric_load,4,kW,extra\n"    # 2 malformed
        b"s1,2024-01-01T02:00Z,nope,5,kW\n"                   # 3 unknown variable
        b"s1,2024-01-01T03:00Z\n"                             # 4 malformed
        b"s1,not a time,electric_load,6,kW\n"                 # 5 unparseable time
        b"s1,2024-01-01T05:00Z,electric_load,-7,kW\n"         # 6 out of range
    ))
    for block in (1 << 20, 16, 64):
        _, r = read_long(p, block_size=block)
        assert reconciles(r)
        got = dict(zip(r.quarantined["row"], r.quarantined["reason"]))
        assert got == {2: "malformed_record", 3: "unknown_variable", 4: "malformed_record",
                       5: "unparseable_time", 6: "out_of_range"}, block


def test_rows_are_records_blank_lines_not_counted_quoted_newlines_one_record(tmp_path):
    p = _write(tmp_path, (
        b"sensor,time,variable,value,unit\n"
        b'"s\n1",2024-01-01T00:00Z,electric_load,3,kW\n'      # 1 (two lines, one record)
        b"\n"
        b"s1,2024-01-01T01:00Z,electric_load,4\n"             # 2 malformed
        b"s1,2024-01-01T02:00Z,nope,5,kW\n"                   # 3
    ))
    for block in (1 << 20, 8, 40):
        cube, r = read_long(p, block_size=block)
        assert reconciles(r) and r.n_in == 3
        assert dict(zip(r.quarantined["row"], r.quarantined["reason"])) == {2: "malformed_record", 3: "unknown_variable"}
        assert cube["energy"]["sensor"].values.tolist() == ["s\n1"]


def test_pieces_end_at_record_ends_outside_quotes():
    import io

    data = b'a,b\n1,"x\ny"\n2,"p\n\nq"\n3,z\n'
    for size in range(1, len(data) + 2):
        pieces = list(_pieces(io.BytesIO(data), size))
        assert b"".join(pieces) == data
        assert all(p.endswith(b"\n") and p.count(b'"') % 2 == 0 for p in pieces)


def test_non_utf8_file_goes_through_the_recoding_path(tmp_path):
    long = to_long(sample_cube(seed=2))
    text = long.to_csv(index=False).encode("latin-1")
    p = _write(tmp_path, text.replace(b"feeder-1", b"feeder-\xe91"))
    cube, r = read_long(p)
    assert reconciles(r) and r.n_accepted == len(long)
    assert "feeder-\ufffd1" in set(cube["energy"]["sensor"].values)
    cube2, _ = read_long(p, encoding="latin-1")
    assert "feeder-\xe91" in set(cube2["energy"]["sensor"].values)


_cell = st.one_of(
    st.sampled_from(["", " ", "s1", " s1 ", "s2", "electric_load", "load", "air_temperature", "nope", "kW", "W", "MW", "°F",
                     "degC", "x", "1", "2.5", " 3 ", "-4", "1e9", "NaN", "inf", "abc", "2024-01-01T00:00:00Z",
                     "2024-01-01T01:00:00+01:00", "2024-01-01 02:00", "2023/12/31 23:00:00", "50.1", "Z01"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(_cell, min_size=8, max_size=8), min_size=1, max_size=25), block=st.sampled_from([32, 100, 1 << 20]))
def test_property_arrow_path_equals_row_frame_path(tmp_path, rows, block):
    """The CSV reader (Arrow, column-wise, in pieces) and ``Collector.add`` on the same rows agree."""
    cols = ["sensor", "time", "variable", "value", "unit", "lat", "lon", "zone"]
    frame = pd.DataFrame(rows, columns=cols)
    p = tmp_path / "p.csv"
    frame.to_csv(p, index=False)
    cube, r = read_long(p, block_size=block)
    back = pd.read_csv(p, dtype=str, keep_default_na=False).replace({"": None})
    back.insert(0, "row", np.arange(1, len(back) + 1))
    c = Collector(source=str(p), sha256=r.sha256, format="long-csv")
    c.add(back)
    cube2, r2 = c.finish()
    assert r.to_dict() == r2.to_dict()
    pd.testing.assert_frame_equal(r.quarantined, r2.quarantined)
    assert_same_cube(cube, cube2)


@pytest.mark.parametrize("order", ["sensor", "time"])
def test_block_size_and_row_order_do_not_change_the_cube(tmp_path, order):
    long = to_long(sample_cube(seed=5)).sort_values([order, "variable"] if order == "time" else ["sensor", "time"], kind="stable")
    long.to_csv(tmp_path / "c.csv", index=False)
    whole, r1 = read_long(tmp_path / "c.csv")
    small, r2 = read_long(tmp_path / "c.csv", block_size=200)
    assert_same_cube(whole, small)
    assert r1.to_dict() == r2.to_dict()
    assert_same_cube(sample_cube(seed=5), whole)


@pytest.mark.parametrize("prefix,body", [(b"", b"caf\xc3\xa9"), (b"\xef\xbb\xbf", b"cafe"), (b"", b"caf\xe9")])
def test_sha256_is_the_file_hash_on_every_path(tmp_path, prefix, body):
    import hashlib

    data = prefix + b"sensor,time,variable,value,unit\n" + body + b",2024-01-01T00:00Z,electric_load,3,kW\n"
    p = _write(tmp_path, data)
    cube, r = read_long(p)
    assert r.sha256 == hashlib.sha256(data).hexdigest()
    assert r.n_accepted == 1 and reconciles(r)
