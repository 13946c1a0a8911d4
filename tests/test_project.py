"""House rules a fresh clone must keep: environment.yml mirrors pyproject, notebooks are clean."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)", req)
    return m.group(1).lower().replace("_", "-"), m.group(3).replace(" ", "")


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = dict(_split(r) for r in project["dependencies"])
    for extra in ("apps", "test"):
        wanted.update(_split(r) for r in project["optional-dependencies"][extra])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge", "nodefaults"]
    deps = env["dependencies"]
    pip = next(d for d in deps if isinstance(d, dict))["pip"]
    assert pip[-1] == "-e ."
    have = dict(_split(d) for d in deps if isinstance(d, str) and d != "pip")
    have.update(_split(p) for p in pip[:-1])
    python = have.pop("python")
    assert python == project["requires-python"]
    assert have == wanted


def test_bokeh_pinned_past_the_websocket_cve():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    apps = dict(_split(r) for r in project["optional-dependencies"]["apps"])
    assert apps["bokeh"] == ">=3.8.2" and apps["panel"] >= ">=1.9"


NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_committed_without_outputs_and_without_definitions(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        assert not cell.get("outputs") and not cell.get("execution_count"), f"{path.name}: strip outputs"
        src = "".join(cell["source"])
        assert not re.search(r"^\s*(def|class)\s+\w+", src, re.M), f"{path.name}: move definitions into workbench/"


def test_readme_starts_with_the_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first = text[: text.find("make test") + 20]
    assert "make serve" in first and "make test" in first


def test_ci_runs_make_test():
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_only_apps_import_panel():
    pattern = re.compile(r"^\s*(import|from)\s+(panel|holoviews|hvplot|bokeh)\b", re.M)
    allowed = {"apps", "commands"}
    for path in (ROOT / "workbench").rglob("*.py"):
        rel = path.relative_to(ROOT / "workbench")
        if rel.parts[0] in allowed and (rel.parts[0] == "apps" or rel.name == "serve.py"):
            continue
        assert not pattern.search(path.read_text(encoding="utf-8")), f"{rel} imports a plotting/serving library"


def test_detectors_never_import_synth():
    pattern = re.compile(r"^\s*(import|from)\s+workbench\.synth\b", re.M)
    for stage in ("perception", "analysis", "integration"):
        for path in (ROOT / "workbench" / stage).rglob("*.py"):
            assert not pattern.search(path.read_text(encoding="utf-8")), f"{path.relative_to(ROOT)} imports workbench.synth"
