"""The workbench vocabulary as data: systems, variables, KPIs and response rules.

``variables.yml`` is loaded and validated once; everything else asks this module.

Examples
--------
>>> from workbench import registry
>>> registry.variable("electric_load")["units"]
'kW'
>>> registry.system_of("rainfall")
'environment'
"""

from __future__ import annotations

import copy
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

__all__ = [
    "SYSTEMS",
    "RegistryError",
    "load_variables",
    "variable",
    "variables_of",
    "system_of",
    "resolve_alias",
    "all_variables",
    "load_yaml",
    "event_kinds",
    "event_systems",
    "event_primary",
]

SYSTEMS = (
    "people",
    "services",
    "transport",
    "communication",
    "water",
    "energy",
    "environment",
)
_REQUIRED = {"long_name": str, "units": str, "aggregation": str, "valid_min": (int, float), "valid_max": (int, float)}
_AGGREGATIONS = {"sum", "mean"}


class RegistryError(ValueError):
    """A registry file breaks its schema."""


@lru_cache(maxsize=None)
def _parsed(name: str) -> dict[str, Any]:
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise RegistryError(f"registry/{name}: expected a mapping at the top level.")
    return data


def load_yaml(name: str) -> dict[str, Any]:
    """One YAML file shipped in ``workbench/registry`` (parsed once per process; a fresh copy)."""
    return copy.deepcopy(_parsed(name))


def _check(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    systems = data.get("systems")
    if not isinstance(systems, dict):
        raise RegistryError("registry/variables.yml: expected a 'systems' mapping.")
    if tuple(systems) != SYSTEMS:
        raise RegistryError(
            f"registry/variables.yml: systems must be {', '.join(SYSTEMS)} in that order, got {', '.join(systems)}."
        )
    flat: dict[str, dict[str, Any]] = {}
    seen_alias: dict[str, str] = {}
    from workbench.units import UnitError, check_unit  # local: units imports this module

    for sysname, sysdef in systems.items():
        for name, v in (sysdef.get("variables") or {}).items():
            where = f"registry/variables.yml: variable '{name}'"
            if name in flat:
                raise RegistryError(f"{where} is defined twice.")
            if not name.isidentifier() or name != name.lower():
                raise RegistryError(f"{where}: names are lower-case identifiers.")
            for key, typ in _REQUIRED.items():
                if not isinstance(v.get(key), typ):
                    raise RegistryError(f"{where}: field '{key}' is missing or not a {typ}.")
            if v["aggregation"] not in _AGGREGATIONS:
                raise RegistryError(f"{where}: aggregation must be sum or mean, got {v['aggregation']!r}.")
            if not v["valid_min"] < v["valid_max"]:
                raise RegistryError(f"{where}: valid_min must be below valid_max.")
            try:
                check_unit(v["units"])
            except UnitError as exc:
                raise RegistryError(f"{where}: {exc}") from None
            for alias in [name, *v.get("aliases", [])]:
                key = str(alias).lower()
                if key in seen_alias and seen_alias[key] != name:
                    raise RegistryError(f"{where}: alias {alias!r} already names '{seen_alias[key]}'.")
                seen_alias[key] = name
            flat[name] = {**v, "name": name, "system": sysname}
    return flat


@lru_cache(maxsize=1)
def load_variables() -> dict[str, dict[str, Any]]:
    """All variables, validated, keyed by name; each entry also carries ``system``."""
    return _check(load_yaml("variables.yml"))


def all_variables() -> list[str]:
    """Every registered variable name, in registry order."""
    return list(load_variables())


def variable(name: str) -> dict[str, Any]:
    """The registry entry of ``name``; a clear error when it is not registered."""
    try:
        return load_variables()[name]
    except KeyError:
        raise KeyError(f"'{name}' is not a registered variable; known: {', '.join(load_variables())}.") from None


def variables_of(system: str) -> list[str]:
    """Variables of one system, in registry order."""
    if system not in SYSTEMS:
        raise KeyError(f"'{system}' is not a system; known: {', '.join(SYSTEMS)}.")
    return [n for n, v in load_variables().items() if v["system"] == system]


def system_of(name: str) -> str:
    """The system a variable belongs to."""
    return variable(name)["system"]


@lru_cache(maxsize=1)
def _aliases() -> dict[str, str]:
    out: dict[str, str] = {}
    for name, v in load_variables().items():
        for alias in [name, *v.get("aliases", [])]:
            out[str(alias).lower()] = name
    return out


def resolve_alias(label: str) -> str | None:
    """Map a feed's spelling of a variable onto the registry, or ``None`` when unknown."""
    key = str(label).strip().lower()
    hit = _aliases().get(key)
    if hit is None:
        hit = _aliases().get(key.replace(" ", "_").replace("-", "_"))
    return hit


@lru_cache(maxsize=1)
def _events() -> dict[str, dict[str, Any]]:
    data = load_yaml("events.yml").get("events")
    if not isinstance(data, dict) or not data:
        raise RegistryError("registry/events.yml: expected an 'events' mapping.")
    for kind, e in data.items():
        systems = e.get("systems") or []
        bad = [s for s in systems if s not in SYSTEMS]
        if not systems or bad:
            raise RegistryError(f"registry/events.yml: event '{kind}' lists unknown or no systems {bad}.")
        if e.get("primary") not in systems:
            raise RegistryError(f"registry/events.yml: event '{kind}' has primary {e.get('primary')!r}, not one of its systems.")
    return data


def event_kinds() -> tuple[str, ...]:
    """The kinds of city events (``registry/events.yml``), in file order."""
    return tuple(_events())


def event_systems() -> dict[str, tuple[str, ...]]:
    """``{kind: systems the event moves}``."""
    return {k: tuple(e["systems"]) for k, e in _events().items()}


def event_primary() -> dict[str, str]:
    """``{kind: the system carrying the event's severity}``."""
    return {k: e["primary"] for k, e in _events().items()}
