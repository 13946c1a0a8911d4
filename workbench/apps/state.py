"""The state every view shares: which dataset, system, variable, zone and time window.

One :class:`CityState` drives every panel of an app (and can be shared by several views):
a zone picked on a map or in the select box, or a new time window, updates every plot that
depends on it. In a served app the dataset, system, variable and zone follow the URL's
query string (``?dataset=reference-winter&zone=Z03``), which is how the index page's
dataset selector reaches the apps.

Examples
--------
>>> from workbench.apps.state import CityState
>>> state = CityState(dataset="reference", system="water")  # doctest: +SKIP
>>> state.variable  # doctest: +SKIP
'water_pressure'
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import panel as pn
import param

from workbench import registry
from workbench.apps import _data, data

__all__ = ["CityState"]


def _py(ts) -> dt.datetime:
    return pd.Timestamp(ts).to_pydatetime()


class CityState(param.Parameterized):
    """Dataset, system, variable, zone and time window shared by the views."""

    dataset = param.Selector(default="reference", objects=["reference"], doc="A catalogued city.")
    system = param.Selector(default="energy", objects=list(registry.SYSTEMS), doc="A city system.")
    variable = param.Selector(default=None, objects=[], doc="A measured variable of the system.")
    zone = param.Selector(default=_data.ALL, objects=[_data.ALL], doc="A district, or 'all'.")
    time_window = param.DateRange(default=None, doc="The period every panel shows.")

    def __init__(self, **params):
        names = list(data.city_names())
        self.param.dataset.objects = names
        if params.get("dataset", "reference") not in names:
            raise ValueError(f"unknown dataset {params.get('dataset')!r}; the catalog lists: {', '.join(names)}.")
        window = params.pop("time_window", None)
        zone = params.pop("zone", _data.ALL)
        variable = params.pop("variable", None)
        super().__init__(**params)
        self._load_dataset(zone=zone, window=window)
        self._load_system(variable=variable)

    # -- the city behind the state ---------------------------------------------------------
    @property
    def city(self):
        """The current city (cached per process, see :func:`workbench.apps.data.city`)."""
        return data.city(self.dataset)

    @property
    def window(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The time window as timestamps."""
        lo, hi = self.time_window
        return pd.Timestamp(lo), pd.Timestamp(hi)

    def zone_label(self) -> str:
        """A readable name of the current zone."""
        for label, z in data.zone_labels(self.dataset).items():
            if z == self.zone:
                return label
        return self.zone

    # -- keep the choices consistent -------------------------------------------------------
    @param.depends("dataset", watch=True)
    def _on_dataset(self):
        self._load_dataset(zone=self.zone, window=None)
        self._load_system(variable=self.variable)

    @param.depends("system", watch=True)
    def _on_system(self):
        self._load_system(variable=None)

    def _load_dataset(self, *, zone, window):
        labels = data.zone_labels(self.dataset)
        t0, t1 = _data.time_bounds(self.city)
        bounds = (_py(t0), _py(t1))
        if window is not None:
            lo, hi = (max(_py(window[0]), bounds[0]), min(_py(window[1]), bounds[1]))
            window = (lo, hi) if lo < hi else bounds
        with param.parameterized.batch_call_watchers(self):
            self.param.zone.objects = labels
            self.param.time_window.bounds = bounds
            self.zone = zone if zone in labels.values() else _data.ALL
            self.time_window = window or bounds

    def _load_system(self, *, variable):
        variables = _data.data_variables(self.city, self.system)
        self.param.variable.objects = variables
        self.variable = variable if variable in variables else (variables[0] if variables else None)

    def sync_url(self) -> CityState:
        """In a served app, mirror dataset/system/variable/zone in the URL's query string."""
        if pn.state.location is not None and pn.state.curdoc is not None and pn.state.curdoc.session_context:
            pn.state.location.sync(self, {"dataset": "dataset", "system": "system",
                                          "variable": "variable", "zone": "zone"})
        return self

    def controls(self, *, variable: bool = True, window: bool = True, width: int | None = None) -> pn.Column:
        """The widgets of this state (a select per choice and a time-range slider), each
        ``width`` pixels wide (the column's width when ``None``)."""
        size = {"width": width, "sizing_mode": "fixed"} if width else {"sizing_mode": "stretch_width"}
        widgets = [
            pn.widgets.Select.from_param(self.param.dataset, label="Dataset", **size),
            pn.widgets.Select.from_param(self.param.system, label="System", **size),
        ]
        if variable:
            widgets.append(pn.widgets.Select.from_param(self.param.variable, label="Variable", **size))
        widgets.append(pn.widgets.Select.from_param(self.param.zone, label="Zone", **size))
        if window:
            widgets.append(pn.widgets.DatetimeRangeSlider.from_param(
                self.param.time_window, label="Time window", step=3600_000 * 6, **size))
        return pn.Column(*widgets, sizing_mode="stretch_width")
