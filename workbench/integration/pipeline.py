"""One pipeline: city → state, index, incidents, alerts, with provenance.

:func:`run` is ``workbench.run``; :meth:`Result.write` is what ``workbench run STORE --out
DIR`` writes:

=========================  ==========================================================
``state.zarr``             the city state (``/state``) and index (``/index``), Zarr v3
``tables/*.parquet|csv``   incidents, alerts, index summary per zone
``alerts/cap/<id>.xml``    one OASIS CAP 1.2 document per alert
``alerts/alerts.sdm.json`` Smart Data Models ``Alert`` entities
``report.html``            a self-contained report (inline plots, no network needed)
``provenance.json``        input path and hash, parameters, package versions
``manifest.json``          every output with its sha256, and the provenance
=========================  ==========================================================

Every output names its provenance: the Zarr store and Parquet files carry it as metadata,
each CAP document in ``<note>``, each SDM entity in ``data.provenance`` (run id and input
hash), the report in its last section, and CSVs through ``manifest.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import uuid
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

from workbench.integration._anomalies import gather_anomalies
from workbench.integration.incidents import detect_incidents, zone_signals
from workbench.integration.index import city_index
from workbench.integration.rules import load_rules, respond
from workbench.integration.state import city_state

__all__ = ["Result", "run", "provenance_of", "input_hash", "compute_by_source"]

_PACKAGES = ("workbench", "numpy", "pandas", "xarray", "dask", "distributed", "zarr", "flox", "scipy", "pyarrow", "lxml")


def input_hash(path: str | os.PathLike) -> str:
    """sha256 over a store: a file's bytes, or for a directory store every metadata file
    (``zarr.json``, ``.zarray``, ``.zattrs``, ``.zgroup``) by relative path, plus the sizes
    of chunk files (hashing every chunk of a large store would cost a full read)."""
    p = Path(path)
    h = hashlib.sha256()
    if p.is_file():
        with p.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    for f in sorted(q for q in p.rglob("*") if q.is_file()):
        rel = f.relative_to(p).as_posix()
        h.update(rel.encode())
        if f.name in ("zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"):
            h.update(f.read_bytes())
        else:
            h.update(str(f.stat().st_size).encode())
    return h.hexdigest()


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def provenance_of(city: xr.DataTree, *, source: str | os.PathLike | None, params: dict[str, Any]) -> dict[str, Any]:
    """Where a run came from: input (path and hash), parameters, package versions."""
    if source is not None and Path(source).exists():
        inp = {"path": str(Path(source).resolve()), "sha256": input_hash(source), "hash_of": "store metadata and chunk sizes"}
    else:
        text = json.dumps({k: str(v) for k, v in city.attrs.items() if k != "history"}, sort_keys=True)
        inp = {"path": str(source) if source else "<in memory>", "sha256": hashlib.sha256(text.encode()).hexdigest(),
               "hash_of": "root attributes (synth_params for a reference city)"}
    return {
        "run_id": uuid.uuid4().hex[:12],
        "created": f"{pd.Timestamp.now('UTC'):%Y-%m-%dT%H:%M:%SZ}",
        "input": inp,
        "parameters": params,
        "versions": _versions(),
        "command": " ".join(sys.argv[:1] + sys.argv[1:]) if sys.argv else "",
    }


@dataclass
class Result:
    """What :func:`run` returns: the four products and where they came from."""

    state: xr.Dataset
    index: xr.Dataset
    incidents: pd.DataFrame
    alerts: pd.DataFrame
    provenance: dict[str, Any]
    geojson: str = ""
    zone_names: dict[str, str] = field(default_factory=dict)

    def index_summary(self) -> pd.DataFrame:
        """Per zone: mean and lowest index, when, and the indicator that cost most then."""
        ix = self.index
        rows = []
        for z in ix["zone"].to_numpy():
            s = ix["index"].sel(zone=z).to_series()
            if s.notna().any():
                t = s.idxmin()
                pl = ix["points_lost"].sel(zone=z, time=t).to_series()
                worst = str(pl.idxmax()) if pl.notna().any() else ""
            else:
                t, worst = pd.NaT, ""
            rows.append({"zone": str(z), "zone_name": self.zone_names.get(str(z), ""), "index_mean": float(s.mean()),
                         "index_min": float(s.min()), "index_min_time": t, "worst_indicator": worst,
                         "incidents": int((self.incidents["zone"] == z).sum()), "alerts": int((self.alerts["zone"] == z).sum())})
        return pd.DataFrame(rows)

    def write(self, out_dir: str | os.PathLike, *, progress: bool | None = None) -> dict[str, Path]:
        """Write every output into ``out_dir`` (see the module table); returns their paths."""
        from workbench.integration.alerts import to_cap, write_alerts
        from workbench.integration.report import write_report
        from workbench.io import write_city

        out = Path(out_dir)
        (out / "tables").mkdir(parents=True, exist_ok=True)
        prov = self.provenance
        prov_text = json.dumps(prov, sort_keys=True)
        paths: dict[str, Path] = {}
        tree = xr.DataTree.from_dict({
            "/": xr.Dataset(attrs={"title": "workbench run", "provenance": prov_text}),
            "/state": _zarr_safe(self.state),
            "/index": _zarr_safe(self.index),
        })
        paths["state"] = write_city(tree, out / "state.zarr", progress=progress)
        tables = {"incidents": self.incidents, "alerts": self.alerts, "index_summary": self.index_summary()}
        for name, df in tables.items():
            paths[f"{name}.parquet"] = _write_parquet(df, out / "tables" / f"{name}.parquet", prov_text)
            paths[f"{name}.csv"] = out / "tables" / f"{name}.csv"
            df.to_csv(paths[f"{name}.csv"], index=False)
        alerts = self.alerts
        written = write_alerts(alerts, out / "alerts", geojson=self.geojson, zone_names=self.zone_names)
        # provenance into each CAP document's <note> and each SDM entity's data
        note = f"workbench run {prov['run_id']}; input {prov['input']['path']} sha256 {prov['input']['sha256']}"
        for ident, xml in to_cap(alerts, geojson=self.geojson, zone_names=self.zone_names):
            (written["cap"] / f"{ident}.xml").write_bytes(_cap_with_note(xml, note))
        sdm = json.loads(written["sdm"].read_text(encoding="utf-8"))
        for ent in sdm:
            ent["data"]["provenance"] = {"runId": prov["run_id"], "inputSha256": prov["input"]["sha256"]}
        written["sdm"].write_text(json.dumps(sdm, indent=1), encoding="utf-8")
        paths["cap"], paths["sdm"] = written["cap"], written["sdm"]
        paths["report"] = write_report(self, out / "report.html")
        paths["provenance"] = out / "provenance.json"
        paths["provenance"].write_text(json.dumps(prov, indent=1, sort_keys=True), encoding="utf-8")
        files = sorted(q for q in out.rglob("*") if q.is_file() and q.name != "manifest.json" and "state.zarr" not in q.parts)
        manifest = {"provenance": prov, "outputs": {q.relative_to(out).as_posix(): input_hash(q) for q in files}}
        manifest["outputs"]["state.zarr/"] = input_hash(out / "state.zarr")
        paths["manifest"] = out / "manifest.json"
        paths["manifest"].write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
        return paths


def _zarr_safe(ds: xr.Dataset) -> xr.Dataset:
    """Attrs as Zarr-safe scalars (lists become JSON); strings stay variable-length objects."""
    ds = ds.copy()
    for name, var in ds.variables.items():
        for k, v in list(var.attrs.items()):
            if isinstance(v, (list, tuple)):
                ds[name].attrs[k] = json.dumps(list(v))
    return ds


def _write_parquet(df: pd.DataFrame, path: Path, prov_text: str) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[b"workbench.provenance"] = prov_text.encode()
    pq.write_table(table.replace_schema_metadata(meta), path)
    return path


def _cap_with_note(xml: bytes, note: str) -> bytes:
    from lxml import etree

    from workbench.integration.alerts import CAP_NS

    root = etree.fromstring(xml)
    # <note> goes after <restriction>/<addresses>/<code> and before <references>/<info>
    el = etree.Element(f"{{{CAP_NS}}}note")
    el.text = note
    info = root.find(f"{{{CAP_NS}}}info")
    if info is not None:
        info.addprevious(el)
    else:
        root.append(el)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _open(city: xr.DataTree | str | os.PathLike) -> tuple[xr.DataTree, str | None]:
    if isinstance(city, xr.DataTree):
        return city, None
    p = Path(city)
    if p.exists():
        from workbench.io import read_city

        return read_city(p), str(p)
    from workbench.io import open_city

    return open_city(str(city)), str(city)


def _lazy_anomalies(city: xr.DataTree) -> list | None:
    """Per-sensor anomalies from perception (lazy, per chunk), when that stage provides them."""
    try:
        from workbench.integration._anomalies import lazy_anomalies
    except ImportError:
        return None
    return lazy_anomalies(city)


def _sources(obj: Any, inputs: dict[str, int]) -> frozenset[int] | None:
    """Which of the city's input arrays (``inputs``: root layer name -> number) a lazy object
    reads; ``None`` when its graph does not say (such a piece goes with the first pass)."""
    from dask.highlevelgraph import HighLevelGraph

    graph = obj.__dask_graph__()
    if not isinstance(graph, HighLevelGraph):
        return None
    seen, todo, found = set(), list(obj.__dask_layers__()), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in inputs:
            found.add(inputs[name])
        todo.extend(graph.dependencies.get(name, ()))
    return frozenset(found)


#: input bytes (decoded: float64 sensors × steps) one pass of :func:`compute_by_source` reads
#: at most, unless one group of inputs read together is larger
PASS_INPUT_BYTES = 2**30


def compute_by_source(city: xr.DataTree, *objs: Any, pass_bytes: int | None = None) -> tuple[Any, ...]:
    """``dask.compute(*objs)`` in passes over the city's input arrays: the lazy pieces (each
    variable of a Dataset, each item of a list) that read the same inputs go in the same pass,
    and consecutive groups share a pass while their inputs stay within ``pass_bytes``
    (default :data:`PASS_INPUT_BYTES`; a city smaller than that is one ``dask.compute``).

    Every input chunk is still read once, but only one pass's intermediates live at a time:
    perception's comparisons with the rest of the city hold a whole variable's z and effect
    until the city's median zone is known (0.9 GB a variable at 714 sensors × 3 years), and
    one compute over every variable let several of them pile up. Small passes cost time
    (a variable's own stages leave a core idle that another variable would fill): 1,000
    sensors × 1 year took 2.2× as long in 13 passes. The results equal one ``dask.compute``.
    """
    import dask
    import dask.array as dsa
    from dask import is_dask_collection

    inputs: dict[str, int] = {}
    size: list[int] = []
    for node in city.subtree:
        for var in node.dataset.data_vars.values():
            if is_dask_collection(var.data):
                for layer in var.data.__dask_layers__():
                    if layer not in inputs:
                        inputs[layer] = len(inputs)
                        size.append(int(var.data.nbytes))
    pieces: list[tuple[int, Any, Any]] = []  # (object number, key, lazy piece)
    for i, obj in enumerate(objs):
        if isinstance(obj, xr.Dataset):
            pieces += [(i, k, v.data) for k, v in obj.variables.items() if is_dask_collection(v.data)]
        elif isinstance(obj, list):
            pieces += [(i, k, v) for k, v in enumerate(obj) if is_dask_collection(v)]
        elif is_dask_collection(obj):
            pieces.append((i, None, obj))
    # union of pieces that share an input: each group is one pass
    parent = list(range(len(pieces)))

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    owner: dict[int, int] = {}
    shared = []
    for p, (_, _, lazy) in enumerate(pieces):
        src = _sources(lazy, inputs)
        if src is None or not src:
            shared.append(p)
            continue
        for s in src:
            if s in owner:
                parent[root(p)] = root(owner[s])
            else:
                owner[s] = p
    groups: dict[int, list[int]] = {}
    for p in range(len(pieces)):
        if p not in shared:
            groups.setdefault(root(p), []).append(p)
    read = {g: sum(size[s] for s, o in owner.items() if root(o) == g) for g in groups}
    budget = PASS_INPUT_BYTES if pass_bytes is None else pass_bytes
    passes: list[list[int]] = [[]]
    held = 0
    for g, ps in groups.items():  # consecutive groups share a pass within the budget
        if passes[-1] and held + read[g] > budget:
            passes.append([])
            held = 0
        passes[-1] += ps
        held += read[g]
    if shared:  # pieces that read no input (or cannot tell): with the first pass
        passes[0] = sorted(passes[0] + shared)
    values: dict[int, Any] = {}
    for ps in passes:
        # arrays and other collections as two lists: dask 2026.8 returned the results of one
        # ``dask.compute(*args)`` out of order when arrays and delayed objects were interleaved
        arrays = [p for p in ps if isinstance(pieces[p][2], dsa.Array)]
        others = [p for p in ps if not isinstance(pieces[p][2], dsa.Array)]
        got = dask.compute([pieces[p][2] for p in arrays], [pieces[p][2] for p in others])  # boundary: the pipeline's pass over one group of inputs
        values.update(zip(arrays, got[0]))
        values.update(zip(others, got[1]))
    out = []
    for i, obj in enumerate(objs):
        mine = {pieces[p][1]: values[p] for p in values if pieces[p][0] == i}
        if isinstance(obj, xr.Dataset):
            obj = obj.copy(deep=False)
            for k, v in mine.items():
                obj.variables[k].data = v
        elif isinstance(obj, list):
            obj = [mine.get(k, v) for k, v in enumerate(obj)]
        elif None in mine:
            obj = mine[None]
        out.append(obj)
    return tuple(out)


def run(
    city: xr.DataTree | str | os.PathLike,
    *,
    freq: str = "1h",
    rules: str | os.PathLike | list | dict | None = None,
    anomalies: pd.DataFrame | bool | None = None,
    scheduler: Any = None,
    progress: bool | None = None,
) -> Result:
    """Run the integration loop: state, index, incidents, alerts, and provenance.

    Parameters
    ----------
    city
        A city (``xarray.DataTree``), a store path (``.zarr`` / ``.nc``) or a catalog name.
    freq
        Interval of the city state and index (incidents are found at the city's own
        resolution).
    rules
        Response rules (file, parsed, or None for ``registry/rules.yml``).
    anomalies
        Per-sensor anomalies to fuse as evidence; ``None`` asks perception
        (``workbench.perception.detect_anomalies``) when it is available, ``False`` skips.
    scheduler
        Where dask runs (``workbench.set_options`` values: ``"threads"``, an address, a
        Client); default: the ``scheduler`` option.
    progress
        Show a progress bar (default: the ``progress`` option).

    Returns
    -------
    Result
        ``state``, ``index`` (in memory: zones × ``freq`` steps), ``incidents``, ``alerts``,
        ``provenance``; ``Result.write(dir)`` writes them all.

    Examples
    --------
    >>> import workbench
    >>> from workbench.synth import make_city
    >>> res = workbench.run(make_city(zones=4, sensors_per_system=12, days=7, seed=3), anomalies=False)
    >>> sorted(res.provenance)
    ['command', 'counts', 'created', 'input', 'parameters', 'run_id', 'versions']
    """
    from workbench._memory import trim
    from workbench._options import scheduler_context

    tree, source = _open(city)
    items = load_rules(rules)
    params = {"freq": freq, "rules": str(rules) if isinstance(rules, (str, os.PathLike)) else ("registry/rules.yml" if rules is None else "<given>"),
              "n_rules": len(items), "anomalies": "given" if isinstance(anomalies, pd.DataFrame) else ("none" if anomalies is False else "perception")}
    with scheduler_context(scheduler, progress=progress, desc="workbench run"):
        state = city_state(tree, freq=freq)
        signals = zone_signals(tree)
        lazy_an = _lazy_anomalies(tree) if anomalies is None or anomalies is True else []
        # boundary: ONE pass over the city — the state, the zone signals (zones × steps) and
        # the per-chunk anomaly runs are computed together, so every Zarr chunk is read once
        # and the full-size per-sensor intermediates never outlive their chunk; in steps of
        # the input variables read together (compute_by_source), so only one variable's
        # intermediates are alive at a time
        state, signals, parts = compute_by_source(tree, state, signals, lazy_an)
        if isinstance(anomalies, pd.DataFrame):
            an = anomalies
        elif anomalies is False or parts is None:
            an = None
        else:
            an = gather_anomalies(parts)
        del parts
        incidents = detect_incidents(tree, anomalies=an, signals=signals)
        # the zone signals and the anomaly table are done with, and the detectors' temporaries
        # are freed: handed back before the index's working set (the peak of a 1,000-sensor
        # year was there, ~370 MB above the start, with both stacked)
        del signals, an
        trim()
        index = city_index(state)  # in memory: zones × freq steps
        alerts = respond(state, incidents, rules=items, index=index)
    zones = tree["zones"].to_dataset() if "zones" in tree.children else None
    geojson = zones.attrs.get("geojson", "") if zones is not None else ""
    names = dict(zip(map(str, zones["zone"].to_numpy()), map(str, zones["zone_name"].to_numpy()))) if zones is not None and "zone_name" in zones else {}
    prov = provenance_of(tree, source=source, params=params)
    prov["counts"] = {"zones": int(state.sizes["zone"]), "steps": int(state.sizes["time"]),
                      "incidents": int(len(incidents)), "alerts": int(len(alerts))}
    state.attrs["provenance"] = json.dumps(prov, sort_keys=True)
    index.attrs["provenance"] = state.attrs["provenance"]
    return Result(state=state, index=index, incidents=incidents, alerts=alerts, provenance=prov, geojson=geojson, zone_names=names)
