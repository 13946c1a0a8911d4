"""The framework floor for latency_apps.py: one select and one tiny plot whose title follows it."""

import holoviews as hv
import numpy as np
import panel as pn

pn.extension()
hv.extension("bokeh", logo=False)

zones = [f"Z{i:02d}" for i in range(1, 13)]
zone = pn.widgets.Select(label="Zone", options=["all", *zones])
x = np.arange(100)
plot = hv.DynamicMap(pn.bind(lambda z: hv.Curve((x, np.sin(x / 10 + len(z)))).opts(title=f"Zone {z}", responsive=True,
                                                                                   height=300), zone))
pn.Row(zone, pn.pane.HoloViews(plot, sizing_mode="stretch_width")).servable()
