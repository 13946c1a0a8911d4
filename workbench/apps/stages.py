"""The loop's stages as the apps use them, imported lazily and cached per process.

The apps only compose: each function here calls :mod:`workbench.perception`,
:mod:`workbench.analysis` or :mod:`workbench.integration` on the cached city and caches
the result with :func:`panel.cache`, so every session shares one computation. A stage that
is not installed raises :class:`StageMissing`, which the views show as a note.
"""

from __future__ import annotations

from importlib import import_module

import pandas as pd
import panel as pn

from workbench.apps import data

__all__ = ["StageMissing", "stage", "quality_summary"]


class StageMissing(RuntimeError):
    """A stage of the loop the view needs is not in this build."""


def stage(module: str, *names: str):
    """The functions ``names`` of ``workbench.<module>``, or :class:`StageMissing`."""
    try:
        mod = import_module(f"workbench.{module}")
        return tuple(getattr(mod, n) for n in names)
    except (ImportError, AttributeError):
        raise StageMissing(f"The {module} stage ({', '.join(names)}) is not in this build yet.") from None


def quality_summary(dataset: str, system: str, variable: str, window) -> pd.DataFrame:
    """Per zone: readings, share present, share flagged (by flag) in the window."""
    raise StageMissing("Quality flags appear here once workbench.perception is in this build.")
