"""A self-contained HTML report of a run: index map, index over time, incident timeline,
alerts, provenance.

Plots are drawn with matplotlib (Agg backend, no display needed) and embedded as inline
SVG, so the file opens anywhere without a network or a server (no tile server either: the
map draws the district polygons from ``/zones``). Tables are plain HTML.
"""

from __future__ import annotations

import html
import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["write_report", "render_report", "KIND_COLOURS"]

KIND_COLOURS = {
    "heatwave": "#d62728", "water_leak": "#1f77b4", "power_outage": "#7f3c8d", "network_outage": "#e6a100",
    "traffic_incident": "#2ca02c", "public_gathering": "#ff7f0e", "sensor_fault": "#7f7f7f",
}


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    text = buf.getvalue()
    return text[text.find("<svg"):]


def _map(result) -> str:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    from workbench.integration.alerts import zone_polygons

    polys = zone_polygons(result.geojson)
    if not polys:
        return "<p>No district polygons in the city.</p>"
    mean = result.index["index"].mean("time").to_series()
    zones = [z for z in polys if z in mean.index]
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    pc = PolyCollection([polys[z] for z in zones], array=np.array([mean[z] for z in zones]), cmap="RdYlGn",
                        edgecolors="k", linewidths=0.6)
    pc.set_clim(50, 100)
    ax.add_collection(pc)
    for z in zones:
        xy = np.array(polys[z])
        ax.text(xy[:-1, 0].mean(), xy[:-1, 1].mean(), f"{z}\n{mean[z]:.0f}", ha="center", va="center", fontsize=7)
    ax.autoscale_view()
    ax.set_aspect(1 / np.cos(np.deg2rad(np.mean([np.array(p)[:, 1].mean() for p in polys.values()]))))
    ax.set_xlabel("longitude (°E)")
    ax.set_ylabel("latitude (°N)")
    ax.set_title("mean city index per district (100 = normal)")
    fig.colorbar(pc, ax=ax, shrink=0.8, label="index")
    return _svg(fig)


def _heat(result) -> str:
    import matplotlib.pyplot as plt

    ix = result.index["index"].transpose("zone", "time")
    t = pd.DatetimeIndex(ix["time"].to_numpy())
    fig, ax = plt.subplots(figsize=(10, 0.3 * ix.sizes["zone"] + 1.2))
    im = ax.imshow(ix.to_numpy(), aspect="auto", cmap="RdYlGn", vmin=0, vmax=100, interpolation="nearest",
                   extent=[0, len(t), ix.sizes["zone"] - 0.5, -0.5])
    ax.set_yticks(range(ix.sizes["zone"]), [str(z) for z in ix["zone"].to_numpy()], fontsize=7)
    ticks = np.linspace(0, len(t) - 1, min(8, len(t))).astype(int)
    ax.set_xticks(ticks, [f"{t[i]:%m-%d %H:%M}" for i in ticks], fontsize=7)
    ax.set_title("city index over time")
    fig.colorbar(im, ax=ax, label="index")
    return _svg(fig)


def _timeline(result) -> str:
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    inc = result.incidents
    zones = [str(z) for z in result.index["zone"].to_numpy()]
    fig, ax = plt.subplots(figsize=(10, 0.3 * len(zones) + 1.5))
    pos = {z: i for i, z in enumerate(zones)}
    for r in inc.itertuples(index=False):
        if r.zone not in pos:
            continue
        width = pd.Timestamp(r.end) - pd.Timestamp(r.start) + pd.Timedelta("15min")
        ax.barh(pos[r.zone], width, left=pd.Timestamp(r.start), height=0.7, color=KIND_COLOURS.get(r.kind, "k"), alpha=0.85)
    ax.set_yticks(range(len(zones)), zones, fontsize=7)
    ax.invert_yaxis()
    t = result.index["time"].to_numpy()
    if len(t):
        ax.set_xlim(t[0], t[-1])
    ax.set_title("incidents by district")
    kinds = [k for k in KIND_COLOURS if k in set(inc["kind"])]
    if kinds:
        ax.legend(handles=[Patch(color=KIND_COLOURS[k], label=k.replace("_", " ")) for k in kinds], fontsize=7,
                  loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.autofmt_xdate()
    return _svg(fig)


def _table(df: pd.DataFrame, cols: list[str], *, limit: int = 200) -> str:
    if df is None or not len(df):
        return "<p>None.</p>"
    cols = [c for c in cols if c in df.columns]
    d = df[cols].head(limit).copy()
    for c in d.columns:
        if pd.api.types.is_float_dtype(d[c]):
            d[c] = d[c].map(lambda v: "" if pd.isna(v) else f"{v:.3g}")
    more = f"<p>… and {len(df) - limit} more (see the tables folder).</p>" if len(df) > limit else ""
    return d.to_html(index=False, escape=True, border=0, classes="t") + more


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table.t{border-collapse:collapse;font-size:0.8em}table.t td,table.t th{padding:2px 6px;border-bottom:1px solid #eee;text-align:left}
pre{background:#f6f6f6;padding:1em;font-size:0.8em;overflow:auto}.kpi{display:inline-block;margin-right:2em}
.kpi b{font-size:1.4em;display:block}"""


def render_report(result) -> str:
    """The report as one HTML string (inline SVG plots, no external resources)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    prov = result.provenance
    summary = result.index_summary()
    inc = result.incidents
    city_kinds = inc[inc["kind"] != "sensor_fault"]
    by_domain = result.alerts["domain"].value_counts().to_dict() if len(result.alerts) else {}
    kpis = "".join(
        f'<div class="kpi"><b>{html.escape(str(v))}</b>{html.escape(k)}</div>'
        for k, v in {
            "districts": result.state.sizes["zone"],
            "mean city index": f"{float(result.index['index'].mean()):.1f}",
            "incidents": len(city_kinds),
            "sensor faults": int((inc["kind"] == "sensor_fault").sum()),
            "alerts": len(result.alerts),
        }.items()
    )
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>Smart City Workbench — run report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Smart City Workbench — run report</h1>",
        f"<p>Input <code>{html.escape(prov['input']['path'])}</code>, run {html.escape(prov['run_id'])} at {html.escape(prov['created'])}.</p>",
        kpis,
        "<h2>City index</h2>", _map(result), _heat(result),
        _table(summary, ["zone", "zone_name", "index_mean", "index_min", "index_min_time", "worst_indicator", "incidents", "alerts"]),
        "<h2>Incidents</h2>", _timeline(result),
        _table(inc.assign(evidence=inc["evidence"].str.slice(0, 160)) if len(inc) else inc,
               ["kind", "zone", "start", "end", "severity", "confidence", "detected_at", "sensor", "evidence"]),
        "<h2>Alerts</h2>",
        "<p>" + ", ".join(f"{html.escape(k.replace('_', ' '))}: {v}" for k, v in by_domain.items()) + "</p>",
        _table(result.alerts, ["start", "zone", "event", "domain", "severity", "urgency", "certainty", "action"]),
        "<h2>Provenance</h2>",
        f"<pre>{html.escape(json.dumps(prov, indent=1, sort_keys=True))}</pre>",
        "</body></html>",
    ]
    return "\n".join(parts)


def write_report(result, path: str | os.PathLike) -> Path:
    """Write :func:`render_report` to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(result), encoding="utf-8")
    return path
