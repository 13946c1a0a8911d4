"""Helpers of the browser tests: read what BokehJS holds and wait on it (no sleeps)."""

from __future__ import annotations

# -- helpers the tests share: read what BokehJS holds, wait on it (no sleeps) ---------------------
JS_READY = "() => window.Bokeh !== undefined && Bokeh.documents.length > 0 && Bokeh.documents[0].roots().length > 0"
JS_TITLES = """() => { const out = [];
  for (const m of Bokeh.documents[0].all_models) { if (m.type === "Title" && m.text) out.push(m.text); }
  return out.sort(); }"""


def open_app(page, url: str, errors: list | None = None, timeout: float = 60_000):
    """Go to ``url``, collect console errors into ``errors``, wait until BokehJS rendered and
    the server session is idle."""
    if errors is not None:
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_function(JS_READY, timeout=timeout)
    wait_idle(page)


def wait_idle(page, timeout: float = 30_000) -> None:
    """Wait until every view of the document reports idle (BokehJS ``Document.is_idle``)."""
    page.wait_for_function("() => Bokeh.documents[0].is_idle !== false", timeout=timeout)


def titles(page) -> list[str]:
    return page.evaluate(JS_TITLES)


def wait_title(page, needle: str, timeout: float = 30_000) -> list[str]:
    """Wait until some plot title contains ``needle``; returns the titles."""
    page.wait_for_function(
        """(needle) => { for (const m of Bokeh.documents[0].all_models)
             { if (m.type === "Title" && m.text && m.text.includes(needle)) return true; } return false; }""",
        arg=needle, timeout=timeout)
    return titles(page)
