"""Write environment.yml from pyproject.toml (conda-forge names; pip-only packages under pip).

Run after changing dependencies: ``.venv/bin/python scripts/sync_environment.py``.
``tests/test_project.py`` checks that the two agree.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: packages conda-forge does not carry
PIP_ONLY = {"capvalidator"}


def main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = list(project["dependencies"])
    for extra in ("apps", "test"):
        deps += project["optional-dependencies"][extra]
    conda, pip = [], []
    for dep in deps:
        name, _, spec = re.match(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?(.*)", dep).groups()
        (pip if name in PIP_ONLY else conda).append(f"{name}{spec}")
    lines = [
        "# Conda environment mirroring pyproject.toml (a test keeps the two in agreement;",
        "# regenerate with `python scripts/sync_environment.py`).",
        "# conda env create -f environment.yml && conda activate workbench",
        "name: workbench",
        "channels:",
        "  - conda-forge",
        "  - nodefaults",
        "dependencies:",
        f"  - python{project['requires-python']}",
        *[f"  - {c}" for c in conda],
        "  - pip",
        "  - pip:",
        *[f"      - {p}" for p in pip],
        "      - -e .",
    ]
    (ROOT / "environment.yml").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
