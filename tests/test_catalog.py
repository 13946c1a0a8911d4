"""The catalog: the reference city on first use, and one clear sentence for every error."""

from __future__ import annotations

import hashlib
import http.server
import threading
from functools import partial

import pytest
import yaml

from workbench.io import write_city
from workbench.io.catalog import CatalogError, list_datasets, load_catalog, open_city


def test_reference_is_catalogued_and_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    assert "reference" in list_datasets()
    entry = load_catalog()["reference"]
    assert entry["params"]["zones"] == 12 and entry["params"]["days"] == 28
    city = open_city("reference")
    assert city["zones"].sizes["zone"] == 12
    n = sum(city[s].sizes["sensor"] for s in city.children if s != "zones")
    assert 200 <= n <= 500
    cached = list(tmp_path.glob("reference-*.zarr"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    open_city("reference")
    assert cached[0].stat().st_mtime_ns == stamp  # not regenerated


def test_unknown_name_is_one_sentence():
    with pytest.raises(CatalogError) as err:
        open_city("atlantis")
    msg = str(err.value)
    assert msg.startswith("unknown dataset 'atlantis'") and "reference" in msg and msg.count("\n") == 0


def _catalog(tmp_path, entries) -> str:
    path = tmp_path / "catalog.yml"
    path.write_text(yaml.safe_dump({"datasets": entries}))
    return str(path)


def test_malformed_entries_are_named(tmp_path):
    with pytest.raises(CatalogError, match="dataset 'x' has kind 'magic'"):
        load_catalog(_catalog(tmp_path, {"x": {"kind": "magic"}}))
    with pytest.raises(CatalogError, match="remote dataset 'r' needs both 'url' and 'sha256'"):
        load_catalog(_catalog(tmp_path, {"r": {"kind": "remote", "url": "http://127.0.0.1/x.nc"}}))


@pytest.fixture()
def file_server(tmp_path):
    """A real HTTP server on loopback serving tmp_path/www."""
    www = tmp_path / "www"
    www.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_remote_store_is_fetched_and_checked(small_city, tmp_path, file_server, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    www, base = file_server
    path = write_city(small_city, www / "small.nc")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    cat = _catalog(tmp_path, {
        "good": {"kind": "remote", "url": f"{base}/small.nc", "sha256": digest},
        "bad": {"kind": "remote", "url": f"{base}/small.nc", "sha256": "0" * 64, "filename": "other.nc"},
    })
    city = open_city("good", catalog=cat)
    assert city["energy"].sizes["sensor"] == 8
    with pytest.raises(CatalogError) as err:
        open_city("bad", catalog=cat)
    assert "does not match the catalog's sha256" in str(err.value) and "'bad'" in str(err.value)


def test_local_store_entry(small_city, tmp_path):
    write_city(small_city, tmp_path / "mine.zarr")
    cat = _catalog(tmp_path, {"mine": {"kind": "store", "path": "mine.zarr"}})
    assert open_city("mine", catalog=cat)["water"].sizes["sensor"] == 8
