"""Cold start: ``import workbench`` stays cheap and the pipeline never pulls the app stack.

Each check runs in a fresh interpreter (a subprocess) and inspects ``sys.modules``: what an
earlier test imported in this process would hide a regression.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY_FOR_IMPORT = ("panel", "holoviews", "hvplot", "bokeh", "sklearn", "matplotlib", "scipy", "pint", "numba",
                    "distributed", "flox", "xarray", "dask", "pandas")
APPS = ("panel", "holoviews", "hvplot", "bokeh", "sklearn", "matplotlib")


def _loaded(code: str, names: tuple[str, ...]) -> list[str]:
    probe = code + f"\nimport json, sys\nprint(json.dumps([m for m in {list(names)!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_workbench_is_light():
    assert _loaded("import workbench", HEAVY_FOR_IMPORT) == []


def test_stage_packages_and_public_api_without_the_app_stack():
    code = ("import importlib, workbench\n"
            "for n in ('integration', 'perception', 'analysis', 'io', 'synth', 'registry'):\n"
            "    importlib.import_module(f'workbench.{n}')\n"
            "for n in workbench.__all__: getattr(workbench, n)\n"
            "import workbench.integration as wi\n"
            "for n in wi.__all__: getattr(wi, n)")
    assert _loaded(code, APPS) == []


def test_tiny_run_imports_no_app_stack():
    code = ("import workbench\nfrom workbench.synth import make_city\n"
            "workbench.run(make_city(zones=4, sensors_per_system=6, days=3), progress=False)")
    assert _loaded(code, APPS) == []  # (dask itself imports distributed when it is installed)


def test_tiny_run_calls_no_numbagg_kernel():
    """numbagg's kernels cannot be cached: each one compiles in every process (seconds each)."""
    code = ("import json, numbagg\ncalled = []\n"
            "def spy(name, f):\n"
            "    def g(*a, **k):\n"
            "        called.append(name)\n"
            "        return f(*a, **k)\n"
            "    return g\n"
            "for n in dir(numbagg):\n"
            "    f = getattr(numbagg, n)\n"
            "    if callable(f) and not n.startswith('_') and not isinstance(f, type):\n"
            "        setattr(numbagg, n, spy(n, f))\n"
            "import workbench\nfrom workbench.synth import make_city\n"
            "workbench.run(make_city(zones=4, sensors_per_system=6, days=8), progress=False)\n"
            "print(json.dumps(sorted(set(called))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
