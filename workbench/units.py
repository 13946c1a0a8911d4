"""Conversion to canonical units with pint.

Feeds spell units many ways (``W``, ``°F``, ``l/s``, UN/CEFACT codes such as ``KWT``);
:func:`to_canonical` converts values of a registered variable into its canonical unit and
raises :class:`UnitError` when the unit is unknown or has the wrong dimension.

Examples
--------
>>> import numpy as np
>>> to_canonical(np.array([1500.0]), "W", "electric_load")
array([1.5])
>>> float(to_canonical(np.array([212.0]), "°F", "air_temperature")[0])
100.0
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np


__all__ = ["UnitError", "to_canonical", "normalise_unit", "pint_spelling", "check_unit", "UNECE_CODES"]

#: UN/CEFACT common codes used by NGSI-LD ``unitCode`` and Smart Data Models.
UNECE_CODES = {
    "CEL": "degC",
    "FAH": "degF",
    "KEL": "K",
    "KWT": "kW",
    "WTT": "W",
    "MAW": "MW",
    "KWH": "kW*h",
    "MTQ": "m3",
    "MQH": "m3/h",
    "MQS": "m3/s",
    "LTR": "L",
    "L2": "L/min",
    "G52": "L/s",
    "BAR": "bar",
    "KPA": "kPa",
    "PAL": "Pa",
    "HP": "hPa",
    "A97": "hPa",
    "KMH": "km/h",
    "MTS": "m/s",
    "HM": "mile/h",
    "GQ": "ug/m3",
    "GP": "mg/m3",
    "H29": "mg/m3",
    "MMT": "mm",
    "H67": "mm/h",
    "E32": "1/h",
    "P1": "percent",
    "C62": "1",
    "E07": "1/h",
    "GB": "GB",
    "E34": "GB",
}

_SPELLINGS = {
    "°c": "degC",
    "ºc": "degC",
    "c": "degC",
    "celsius": "degC",
    "deg c": "degC",
    "degrees c": "degC",
    "°f": "degF",
    "f": "degF",
    "fahrenheit": "degF",
    "µg/m3": "ug/m3",
    "µg/m³": "ug/m3",
    "μg/m3": "ug/m3",
    "μg/m³": "ug/m3",
    "ug/m^3": "ug/m3",
    "ug.m-3": "ug/m3",
    "ugm-3": "ug/m3",
    "ugm -3": "ug/m3",
    "m³/h": "m3/h",
    "m^3/h": "m3/h",
    "m³/s": "m3/s",
    "l/s": "L/s",
    "l/min": "L/min",
    "veh/h": "1/h",
    "vehicles/h": "1/h",
    "vehicles/hour": "1/h",
    "persons/h": "1/h",
    "people/h": "1/h",
    "count/h": "1/h",
    "counts/h": "1/h",
    "requests/h": "1/h",
    "count": "1",
    "counts": "1",
    "devices": "1",
    "kph": "km/h",
    "mph": "mile/h",
    "mm/hr": "mm/h",
    "gb/h": "GB/h",
    "mb/h": "MB/h",
}


class UnitError(ValueError):
    """A unit is unknown or cannot be converted to the variable's canonical unit."""


def check_unit(unit: str) -> None:
    """Raise :class:`UnitError` unless pint understands ``unit``."""
    try:
        _ureg().parse_units(pint_spelling(unit))
    except Exception as exc:  # pint raises several types
        raise UnitError(f"unit {unit!r} is not understood by pint ({exc}).") from None


@lru_cache(maxsize=1)
def _ureg():
    import pint

    ureg = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
    ureg.define("GB = 1e9 * byte")
    ureg.define("MB = 1e6 * byte")
    return ureg


def normalise_unit(unit: str | None) -> str:
    """A feed's unit string (or UN/CEFACT code) spelled so pint understands it."""
    if unit is None:
        return ""
    text = str(unit).strip()
    if text in UNECE_CODES:
        return UNECE_CODES[text]
    return _SPELLINGS.get(text.lower(), text)


def pint_spelling(unit: str) -> str:
    """Spell a unit for pint: ``m3`` and ``m^3`` become ``m**3``; UDUNITS ``h-1`` becomes ``h**-1``."""
    return re.sub(r"([A-Za-z])\^?(-?\d)", r"\1**\2", unit)


@lru_cache(maxsize=512)
def _factor(unit: str, canonical: str) -> tuple[float, float]:
    """(scale, offset) such that canonical = value * scale + offset."""
    ureg = _ureg()
    try:
        q0 = ureg.Quantity(0.0, pint_spelling(unit)).to(pint_spelling(canonical)).magnitude
        q1 = ureg.Quantity(1.0, pint_spelling(unit)).to(pint_spelling(canonical)).magnitude
    except Exception as exc:  # pint raises UndefinedUnitError, DimensionalityError, ...
        raise UnitError(f"unit {unit!r} cannot be converted to {canonical!r} ({type(exc).__name__}).") from None
    return float(q1 - q0), float(q0)


def to_canonical(values: np.ndarray, unit: str | None, variable: str) -> np.ndarray:
    """Convert ``values`` given in ``unit`` to the canonical unit of ``variable``.

    An empty or missing ``unit`` means the values are already canonical.
    """
    from workbench import registry

    canonical = registry.variable(variable)["units"]
    norm = normalise_unit(unit)
    if norm in ("", canonical):
        return np.asarray(values, dtype="float64")
    scale, offset = _factor(norm, canonical)
    return np.asarray(values, dtype="float64") * scale + offset
