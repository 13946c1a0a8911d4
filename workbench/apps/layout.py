"""The page every app is served in: a Bootstrap template that loads nothing from outside.

Panel bundles Bootstrap's CSS and JS and serves them from ``/static``; the Fast and
Material designs pull fonts from Google instead (a console error offline), so they are not
used.
"""

from __future__ import annotations

import panel as pn

__all__ = ["page"]

BRAND = "#1f3b57"


def page(title: str, main: list, sidebar: list | None = None) -> pn.template.BootstrapTemplate:
    """A served page with ``main`` panels and an optional ``sidebar``."""
    kw = {"sidebar": sidebar, "sidebar_width": 300} if sidebar else {"collapsed_sidebar": True}
    return pn.template.BootstrapTemplate(title=title, main=main, header_background=BRAND, **kw)
