"""Perception: quality flags, time alignment, anomaly scores and detection.

The first stage of the loop (DESIGN.md §1): turn a raw cube into a trustworthy one and say
which readings (flags) and which moments (anomalies) are abnormal. Detectors see only the
data; they never import :mod:`workbench.synth`.

Examples
--------
>>> from workbench.synth import make_city
>>> from workbench.perception import quality_flags, detect_anomalies
>>> city = make_city(zones=4, sensors_per_system=8, days=14)
>>> flagged = quality_flags(city)
>>> sorted(v for v in flagged["energy"].data_vars)
['electric_load', 'electric_load_completeness', 'electric_load_qc']
"""

from __future__ import annotations

from workbench.perception.align import align
from workbench.perception.anomalies import DEFAULT_THRESHOLD, anomaly_scores, detect_anomalies, profile_key
from workbench.perception.flags import BAD, FLAG_MASKS, FLAG_MEANINGS, flag_events, flag_names, qc_attrs, quality_flags

__all__ = ["align", "quality_flags", "flag_events", "anomaly_scores", "detect_anomalies", "profile_key", "DEFAULT_THRESHOLD", "FLAG_MASKS", "FLAG_MEANINGS", "BAD", "flag_names", "qc_attrs"]
