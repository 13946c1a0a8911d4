"""The `workbench` command: generate, info, and help everywhere."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from workbench.cli import main


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in ("generate", "info"):
        assert name in out


@pytest.mark.parametrize("name", ["generate", "info"])
def test_subcommand_help(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0 and "usage" in capsys.readouterr().out


def test_generate_then_info(tmp_path, capsys):
    store = tmp_path / "c.zarr"
    assert main(["generate", "--out", str(store), "--zones", "3", "--sensors-per-system", "4", "--days", "2", "--quiet"]) == 0
    assert store.exists()
    capsys.readouterr()
    assert main(["info", str(store), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["zones"] == 3
    assert info["systems"]["energy"]["sensors"] == 4
    assert 0.9 <= info["systems"]["energy"]["variables"]["electric_load"]["completeness"] <= 1.0
    assert main(["info", str(store)]) == 0
    assert "electric_load" in capsys.readouterr().out


def test_info_on_missing_store_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nope.zarr")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no such city store" in err and "\n" not in err


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "workbench.cli", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("workbench ")
