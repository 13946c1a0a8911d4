"""`workbench serve`: the command line it builds, and what it refuses."""

from __future__ import annotations

import argparse
import json

import pytest

from workbench.commands.serve import COOKIE_ENV, ServeError, build_command, register


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["serve", *argv])


def test_defaults_are_explicit_and_safe(tmp_path):
    cmd, env = build_command(parse(), tmp_path, environ={})
    joined = " ".join(cmd)
    assert "--address 127.0.0.1" in joined and "--port 5006" in joined
    assert "--allow-websocket-origin localhost:5006" in joined
    assert "*" not in joined
    assert "--liveness" in cmd and "--admin" not in cmd
    assert cmd[cmd.index("--websocket-max-message-size") + 1] == str(int(20 * 2**20 * 4 / 3) + 2**20)
    assert env["WORKBENCH_MAX_UPLOAD_MB"] == "20.0"
    index = cmd[cmd.index("--index") + 1]
    text = open(index, encoding="utf-8").read()
    assert 'value="reference"' in text and "https://" not in text  # the catalog, nothing external
    assert any(a.endswith("00_overview.ipynb") for a in cmd)
    assert any("01_perception" in a for a in cmd) and any("03_integration" in a for a in cmd)


@pytest.mark.parametrize("origin", ["*", "*:5006", "example.org:*"])
def test_wildcard_origin_is_refused(tmp_path, origin):
    with pytest.raises(ServeError, match="lets any web page"):
        build_command(parse("--allow-websocket-origin", origin), tmp_path, environ={})


def test_auth_without_cookie_secret_is_refused(tmp_path):
    with pytest.raises(ServeError, match=COOKIE_ENV):
        build_command(parse("--basic-auth", "ana:pw"), tmp_path, environ={})
    with pytest.raises(ServeError, match=COOKIE_ENV):
        build_command(parse("--oauth-provider", "github"), tmp_path, environ={COOKIE_ENV: "short"})


def test_basic_auth_user_pass_goes_to_a_private_file_and_secret_to_the_env(tmp_path):
    secret = "s" * 32
    cmd, env = build_command(parse("--basic-auth", "ana:pw"), tmp_path, environ={COOKIE_ENV: secret})
    path = cmd[cmd.index("--basic-auth") + 1]
    assert json.loads(open(path).read()) == {"ana": "pw"}
    assert (tmp_path / "users.json").stat().st_mode & 0o077 == 0
    assert "pw" not in " ".join(cmd) and secret not in " ".join(cmd)  # never on the command line
    assert env["PANEL_COOKIE_SECRET"] == secret


def test_basic_auth_needs_a_file_or_user_pass(tmp_path):
    with pytest.raises(ServeError, match="USER:PASS"):
        build_command(parse("--basic-auth", "justapassword"), tmp_path, environ={COOKIE_ENV: "s" * 32})


def test_oauth_reads_key_and_secret_from_the_environment(tmp_path):
    environ = {COOKIE_ENV: "s" * 32}
    with pytest.raises(ServeError, match="WORKBENCH_OAUTH_KEY"):
        build_command(parse("--oauth-provider", "github"), tmp_path, environ=environ)
    cmd, env = build_command(parse("--oauth-provider", "github"), tmp_path,
                             environ={**environ, "WORKBENCH_OAUTH_KEY": "k", "WORKBENCH_OAUTH_SECRET": "v"})
    assert env["PANEL_OAUTH_SECRET"] == "v" and "v" not in cmd


def test_upload_limit_sets_the_websocket_limit(tmp_path):
    cmd, env = build_command(parse("--max-upload-mb", "2"), tmp_path, environ={})
    assert int(cmd[cmd.index("--websocket-max-message-size") + 1]) > 2 * 2**20
    assert env["WORKBENCH_MAX_UPLOAD_MB"] == "2.0"


def test_missing_notebook_is_one_sentence(tmp_path):
    with pytest.raises(ServeError, match="no such notebook"):
        build_command(parse("nope.ipynb"), tmp_path, environ={})


def test_cli_refuses_to_start_without_cookie_secret(monkeypatch, capsys):
    from workbench.cli import main

    monkeypatch.delenv(COOKIE_ENV, raising=False)
    assert main(["serve", "--basic-auth", "ana:pw"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and COOKIE_ENV in err


def test_warm_computes_every_panel_before_serving(tmp_path):
    cmd, _ = build_command(parse("--warm"), tmp_path, environ={})
    assert "--warm" in cmd
    setup = cmd[cmd.index("--setup") + 1]
    assert setup.endswith("_warm.py") and "stages.warm" in open(setup, encoding="utf-8").read()
    cmd, _ = build_command(parse(), tmp_path, environ={})
    assert "--setup" not in cmd and "--warm" not in cmd
