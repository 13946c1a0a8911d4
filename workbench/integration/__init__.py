"""Integration and response: city state, composite index, incidents, rules and alerts.

The third and fourth stages of the loop (DESIGN.md §1): one city-state cube (zone × time),
a composite 0–100 index per district with each indicator's contribution, incidents fused
from co-occurring anomalies across systems, and response rules that turn them into routed
alerts exported as OASIS CAP 1.2 and Smart Data Models ``Alert``. :func:`run` chains them
with provenance (``workbench.run``). See ``docs/integration.md``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = [
    "city_state", "city_index", "explain", "detect_incidents", "zone_signals", "respond", "load_rules",
    "to_cap", "to_sdm", "write_alerts", "run", "Result",
    "INCIDENT_KINDS",
]

_LAZY = {
    "city_state": "state", "city_index": "index", "explain": "index", "detect_incidents": "incidents",
    "zone_signals": "incidents", "INCIDENT_KINDS": "incidents", "respond": "rules", "load_rules": "rules",
    "to_cap": "alerts", "to_sdm": "alerts", "write_alerts": "alerts", "run": "pipeline", "Result": "pipeline",
}


def __getattr__(name: str) -> Any:  # lazy: importing the package stays cheap
    if name in _LAZY:
        return getattr(import_module(f"workbench.integration.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'workbench.integration' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
