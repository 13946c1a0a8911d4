"""What an ingest did: counts that reconcile, and every rejected record with its reason.

Every input record ends either **accepted** (its value is in the cube) or **quarantined**
(kept in :attr:`IngestReport.quarantined` with a reason); ``n_in == n_accepted +
n_quarantined`` is checked when a report is built.

Identical duplicates -- the same ``(sensor, time, variable)`` with the same value after
conversion to the canonical unit -- are *accepted*: the cube holds the value once, and the
extra copies are counted in ``n_duplicates_merged``. So the cube holds
``n_accepted - n_duplicates_merged`` values. Duplicates whose values disagree are all
quarantined (``duplicate_conflict``): the reader cannot know which one is right.

Examples
--------
>>> r = IngestReport(source="x.csv", sha256="", format="long", n_in=2, n_accepted=1,
...                  reasons={"unknown_variable": 1})
>>> r.n_quarantined
1
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["REASONS", "QUARANTINE_COLUMNS", "ReadError", "IngestReport"]

#: quarantine reasons, in the order checks run (a record gets the first that applies)
REASONS = {
    "malformed_record": "the record could not be split into fields (wrong field count, broken structure)",
    "missing_sensor": "no sensor id",
    "unknown_variable": "variable not in the registry (not guessed)",
    "unparseable_time": "time missing, unparseable or outside 1678-2261",
    "non_numeric_value": "value missing, not a number, NaN or infinite",
    "unknown_unit": "unit unknown or not convertible to the variable's canonical unit",
    "out_of_range": "outside the registry's valid_min..valid_max after conversion",
    "duplicate_conflict": "same (sensor, time, variable) given again with a different value",
    "no_zone": "point event without a location, at 0/0, or outside every zone (Open311)",
}

#: columns of :attr:`IngestReport.quarantined` (all strings except ``row``)
QUARANTINE_COLUMNS = ("row", "reason", "sensor", "time", "variable", "value", "unit", "detail")


class ReadError(ValueError):
    """A source that cannot be read at all; the message names the source and the problem."""


def empty_quarantine() -> pd.DataFrame:
    """An empty quarantine table with the documented columns and dtypes."""
    cols = {c: pd.Series([], dtype="string") for c in QUARANTINE_COLUMNS}
    cols["row"] = pd.Series([], dtype="int64")
    return pd.DataFrame(cols)


@dataclass
class IngestReport:
    """Counts and quarantined records of one ingest.

    Parameters
    ----------
    source, sha256, format
        What was read: a path or URL, the SHA-256 of its bytes ("" for live sources), the
        format name.
    n_in, n_accepted
        Records read and records accepted (identical duplicates included, see module doc).
    reasons
        Quarantined records per reason (keys from :data:`REASONS`).
    quarantined
        One row per quarantined record, columns :data:`QUARANTINE_COLUMNS`; ``row`` is the
        1-based record number in the source, the other fields are the raw text.
    n_duplicates_merged
        Identical repeats accepted but stored once.
    n_flagged_by_source
        Accepted records the source itself marked suspect (e.g. Newcastle's
        "Flagged as Suspect Reading"); their keys are in ``flagged``.
    """

    source: str
    sha256: str
    format: str
    n_in: int
    n_accepted: int
    reasons: dict[str, int] = field(default_factory=dict)
    quarantined: pd.DataFrame = field(default_factory=empty_quarantine)
    n_duplicates_merged: int = 0
    n_flagged_by_source: int = 0
    flagged: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame({"sensor": pd.Series([], dtype="string"),
                                              "time": pd.Series([], dtype="datetime64[ns]"),
                                              "variable": pd.Series([], dtype="string")})
    )

    def __post_init__(self) -> None:
        unknown = set(self.reasons) - set(REASONS)
        if unknown:
            raise ValueError(f"IngestReport for {self.source}: unknown reasons {sorted(unknown)}.")
        self.reasons = {r: int(self.reasons.get(r, 0)) for r in REASONS}
        if self.n_in != self.n_accepted + self.n_quarantined:
            raise ValueError(
                f"IngestReport for {self.source} does not reconcile: n_in={self.n_in} but "
                f"n_accepted={self.n_accepted} + n_quarantined={self.n_quarantined}."
            )
        if len(self.quarantined) and len(self.quarantined) != self.n_quarantined:
            raise ValueError(
                f"IngestReport for {self.source}: {len(self.quarantined)} quarantined rows listed "
                f"but reasons count {self.n_quarantined}."
            )

    @property
    def n_quarantined(self) -> int:
        """Records quarantined, summed over reasons."""
        return int(sum(self.reasons.values()))

    def to_dict(self) -> dict[str, Any]:
        """Counts and provenance as plain JSON-able types (the quarantined rows excluded)."""
        return {
            "source": self.source,
            "sha256": self.sha256,
            "format": self.format,
            "n_in": int(self.n_in),
            "n_accepted": int(self.n_accepted),
            "n_quarantined": self.n_quarantined,
            "n_duplicates_merged": int(self.n_duplicates_merged),
            "n_flagged_by_source": int(self.n_flagged_by_source),
            "reasons": dict(self.reasons),
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    def write(self, path: str | Path) -> Path:
        """Write the quarantined rows to Parquet at ``path`` (the report itself in its metadata)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(self.quarantined, preserve_index=False)
        meta = dict(table.schema.metadata or {})
        meta[b"workbench.ingest_report"] = self.to_json(indent=None).encode()
        pq.write_table(table.replace_schema_metadata(meta), path)
        return path

    def summary(self) -> str:
        """A few human-readable lines."""
        lines = [
            f"source      {self.source} ({self.format})",
            f"sha256      {self.sha256 or '-'}",
            f"read        {self.n_in}",
            f"accepted    {self.n_accepted} ({self.n_duplicates_merged} identical duplicates merged)",
            f"quarantined {self.n_quarantined}",
        ]
        lines += [f"  {r:<18} {n}" for r, n in self.reasons.items() if n]
        if self.n_flagged_by_source:
            lines.append(f"flagged by source {self.n_flagged_by_source}")
        return "\n".join(lines)
