"""``workbench serve``: the notebooks as Panel apps, with an index page and safe defaults.

Builds and runs a ``python -m panel serve`` command line:

- the notebooks (default ``notebooks/00_overview.ipynb`` … ``03_integration.ipynb``) and a
  custom index page (no external content) listing the apps and a dataset selector from the
  catalog;
- an explicit ``--address`` (default 127.0.0.1) and websocket origins (default
  ``localhost:PORT`` and ``127.0.0.1:PORT``); ``*`` is refused;
- ``--basic-auth FILE`` (a JSON ``{"user": "password"}`` file) or ``USER:PASS``, and
  ``--oauth-provider`` (key and secret from ``WORKBENCH_OAUTH_KEY`` /
  ``WORKBENCH_OAUTH_SECRET``); either needs ``WORKBENCH_COOKIE_SECRET`` in the
  environment, or the command refuses to start; secrets reach the server through its
  environment, never its command line;
- ``/admin`` off, ``/liveness`` on, and an upload limit (``--max-upload-mb``) checked by the
  apps on the server and bounding the websocket message size.

Examples
--------
$ workbench serve                       # http://localhost:5006
$ WORKBENCH_COOKIE_SECRET=$(openssl rand -hex 32) workbench serve --basic-auth users.json
"""

from __future__ import annotations

import argparse
import html
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["register", "build_command", "ServeError", "DEFAULT_NOTEBOOKS"]

DEFAULT_NOTEBOOKS = ("00_overview.ipynb", "01_perception.ipynb", "02_analysis.ipynb", "03_integration.ipynb")
TITLES = {"00_overview": "Overview", "01_perception": "Perception", "02_analysis": "Analysis",
          "03_integration": "Integration"}
DESCRIPTIONS = {
    "00_overview": "Every system's sensors over the districts, and a week of one variable.",
    "01_perception": "Raw readings, their quality and anomalies; check an uploaded feed.",
    "02_analysis": "Profiles, district roll-ups, cross-system lags, forecasts and KPIs.",
    "03_integration": "The city state, composite indices, incidents and the alerts they raise.",
}
COOKIE_ENV = "WORKBENCH_COOKIE_SECRET"


class ServeError(ValueError):
    """The serve options are unsafe or inconsistent; the message says which and why."""


def _project_root() -> Path:
    return Path(__file__).resolve().parents[2]


def _notebooks(paths: list[str]) -> list[Path]:
    if paths:
        found = [Path(p) for p in paths]
    else:
        folder = _project_root() / "notebooks"
        pages = Path(__file__).resolve().parents[1] / "apps" / "pages"
        found = []
        for n in DEFAULT_NOTEBOOKS:  # a missing app notebook falls back to the view's own page
            fallback = pages / n.replace(".ipynb", ".py")
            found += [folder / n] if (folder / n).exists() else [fallback] if fallback.exists() else []
    missing = [str(p) for p in found if not p.exists()]
    if missing:
        raise ServeError(f"no such notebook or script: {', '.join(missing)}.")
    if not found:
        raise ServeError("no notebooks to serve: pass paths, or run from a checkout with notebooks/.")
    return [p.resolve() for p in found]


def _index_template(folder: Path) -> Path:
    from workbench.io.catalog import load_catalog

    entries = {k: v for k, v in load_catalog().items() if v.get("kind") != "feed"}
    options = "\n".join(
        f'<option value="{html.escape(k)}" data-description="{html.escape(v.get("description", ""))}"'
        f'{" selected" if k == "reference" else ""}>{html.escape(k)}</option>'
        for k, v in entries.items())
    text = (Path(__file__).resolve().parents[1] / "apps" / "templates" / "index.html").read_text(encoding="utf-8")
    text = text.replace("__DATASET_OPTIONS__", options).replace(
        "__APP_DESCRIPTIONS__", json.dumps(DESCRIPTIONS).replace("</", "<\\/"))
    path = folder / "index.html"
    path.write_text(text, encoding="utf-8")
    return path


def _basic_auth_file(value: str, folder: Path) -> Path:
    path = Path(value)
    if path.is_file():
        try:
            users = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            users = None
        if not isinstance(users, dict) or not users:
            raise ServeError(f"--basic-auth {value}: expected a JSON object of user: password pairs.")
        return path.resolve()
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ServeError("--basic-auth takes a JSON file of user: password pairs, or USER:PASS.")
    out = folder / "users.json"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({user: password}, fh)
    return out


def build_command(args: argparse.Namespace, folder: Path, environ=os.environ) -> tuple[list[str], dict[str, str]]:
    """The ``panel serve`` command line and the environment to run it with.

    Raises :class:`ServeError` (one sentence) when the options are unsafe.
    """
    origins = list(args.allow_websocket_origin or [])
    if any(o.strip() in ("*", "*:*") or "*" in o for o in origins):
        raise ServeError("--allow-websocket-origin '*' lets any web page drive the apps; name the HOST:PORT browsers use.")
    if not origins:
        origins = [f"localhost:{args.port}", f"127.0.0.1:{args.port}"]
        if args.address not in ("127.0.0.1", "localhost", "0.0.0.0", "::", ""):
            origins.append(f"{args.address}:{args.port}")
    if args.max_upload_mb <= 0:
        raise ServeError("--max-upload-mb must be positive.")
    env = dict(environ)
    auth = bool(args.basic_auth or args.oauth_provider)
    if args.basic_auth and args.oauth_provider:
        raise ServeError("choose one of --basic-auth and --oauth-provider, not both.")
    secret = environ.get(COOKIE_ENV, "")
    if auth and len(secret) < 16:
        raise ServeError(f"authentication needs a cookie secret: set {COOKIE_ENV} to a random string of at least "
                         f"16 characters (e.g. `export {COOKIE_ENV}=$(openssl rand -hex 32)`).")
    for var in ("PANEL_BASIC_AUTH", "PANEL_OAUTH_PROVIDER", "PANEL_COOKIE_SECRET", "BOKEH_ALLOW_WS_ORIGIN"):
        env.pop(var, None)  # only this command's options decide
    env["WORKBENCH_MAX_UPLOAD_MB"] = str(args.max_upload_mb)
    env.setdefault("BOKEH_RESOURCES", "server")
    # base64 in a JSON message: 4/3 of the file plus room for the envelope
    ws_max = int(args.max_upload_mb * 2**20 * 4 / 3) + 2**20
    cmd = [sys.executable, "-m", "panel", "serve", *map(str, _notebooks(args.notebooks)),
           "--address", args.address, "--port", str(args.port),
           "--liveness", "--websocket-max-message-size", str(ws_max),
           "--index", str(_index_template(folder)), "--num-procs", "1"]
    for o in origins:
        cmd += ["--allow-websocket-origin", o]
    for slug, title in TITLES.items():
        cmd += ["--index-titles", f"{slug}={title}"]
    if auth:
        env["PANEL_COOKIE_SECRET"] = secret
    if args.basic_auth:
        cmd += ["--basic-auth", str(_basic_auth_file(args.basic_auth, folder))]
        cmd += ["--basic-login-template", str(Path(__file__).resolve().parents[1] / "apps" / "templates" / "login.html")]
    if args.oauth_provider:
        key, osecret = environ.get("WORKBENCH_OAUTH_KEY"), environ.get("WORKBENCH_OAUTH_SECRET")
        if not (key and osecret):
            raise ServeError("--oauth-provider needs WORKBENCH_OAUTH_KEY and WORKBENCH_OAUTH_SECRET in the environment.")
        cmd += ["--oauth-provider", args.oauth_provider]
        env["PANEL_OAUTH_KEY"], env["PANEL_OAUTH_SECRET"] = key, osecret
        if args.oauth_redirect_uri:
            cmd += ["--oauth-redirect-uri", args.oauth_redirect_uri]
        if environ.get("WORKBENCH_OAUTH_ENCRYPTION_KEY"):
            env["PANEL_OAUTH_ENCRYPTION"] = environ["WORKBENCH_OAUTH_ENCRYPTION_KEY"]
    if args.warm:  # every panel of the default dataset computed once, then each app run once
        cmd += ["--setup", str(Path(__file__).resolve().parents[1] / "apps" / "_warm.py"), "--warm"]
    if args.log_level:
        cmd += ["--log-level", args.log_level]
    return cmd, env


def _run(args: argparse.Namespace) -> int:
    folder = Path(tempfile.mkdtemp(prefix="workbench-serve-"))
    try:
        try:
            cmd, env = build_command(args, folder)
        except ServeError as exc:
            print(f"workbench serve: {exc}", file=sys.stderr)
            return 2
        if args.dry_run:
            print(" ".join(cmd))
            return 0
        print(f"workbench serve: http://{'localhost' if args.address in ('127.0.0.1', '0.0.0.0') else args.address}"
              f":{args.port}/", file=sys.stderr, flush=True)
        proc = subprocess.Popen(cmd, env=env)

        def forward(signum, _frame):
            proc.send_signal(signum)

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, forward)
        return proc.wait()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve", help="serve the notebooks as Panel apps (http://localhost:5006)",
        description="Serve the workbench notebooks as Panel apps, with an index page, on an explicit "
                    "address and websocket origin. Authentication (--basic-auth, --oauth-provider) needs "
                    f"{COOKIE_ENV} in the environment.")
    p.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                   help="notebooks or scripts to serve (default: notebooks/00_overview … 03_integration)")
    p.add_argument("--address", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5006, help="port (default 5006)")
    p.add_argument("--allow-websocket-origin", action="append", metavar="HOST:PORT",
                   help="origin browsers use (repeatable; default localhost:PORT and 127.0.0.1:PORT; never '*')")
    p.add_argument("--basic-auth", metavar="FILE_OR_USER:PASS",
                   help="JSON file of user: password pairs, or USER:PASS (needs WORKBENCH_COOKIE_SECRET)")
    p.add_argument("--oauth-provider", metavar="NAME",
                   help="Panel OAuth provider (github, google, azure, generic, ...); key and secret from "
                        "WORKBENCH_OAUTH_KEY / WORKBENCH_OAUTH_SECRET (needs WORKBENCH_COOKIE_SECRET)")
    p.add_argument("--oauth-redirect-uri", metavar="URL", help="the OAuth redirect URI, when behind a proxy")
    p.add_argument("--max-upload-mb", type=float, default=20.0,
                   help="largest upload accepted, checked on the server (default 20)")
    p.add_argument("--warm", action="store_true", help="compute every panel of the default dataset and run each app once before the first user arrives")
    p.add_argument("--log-level", choices=["trace", "debug", "info", "warning", "error", "critical"])
    p.add_argument("--dry-run", action="store_true", help="print the panel serve command and exit")
    p.set_defaults(func=_run)
