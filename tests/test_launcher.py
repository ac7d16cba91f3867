"""launch.py's rules: localhost by default, no share link without a login, secrets not echoed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import ROOT

from studio.webui import launcher


def run_launch(*args, timeout=60):
    return subprocess.run(
        [sys.executable, "launch.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_share_without_login_refuses_to_start():
    out = run_launch("--share")
    assert out.returncode == 2
    assert "--auth" in out.stderr and "--no-auth" in out.stderr


def test_bad_auth_file_line_is_named_without_the_secret(tmp_path):
    logins = tmp_path / "logins.txt"
    logins.write_text("# admins\nalice:pw-one\nbob-without-password-topsecret\n")
    out = run_launch("--auth-file", str(logins))
    assert out.returncode == 2 and f"{logins}:3" in out.stderr
    assert "topsecret" not in out.stderr and "pw-one" not in out.stderr


def test_credentials_from_every_source(tmp_path, monkeypatch):
    logins = tmp_path / "logins.txt"
    logins.write_text("alice:a:b\n")
    monkeypatch.setenv("BGE_STUDIO_AUTH", "carol:c")
    args = launcher.build_parser().parse_args(["--auth", "bob:b", "--auth-file", str(logins)])
    assert launcher.parse_credentials(args) == [("bob", "b"), ("carol", "c"), ("alice", "a:b")]
    assert launcher.build_parser().parse_args([]).host == "127.0.0.1"


@pytest.mark.slow
def test_share_without_network_says_one_line_and_serves_locally(tmp_path):
    port = 7900 + os.getpid() % 90
    log = tmp_path / "out.log"
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "launch.py",
                "--share",
                "--auth",
                "u:hunter22",
                "--port",
                str(port),
                "--runs-dir",
                str(tmp_path / "runs"),
            ],
            cwd=ROOT,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and "share link" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            time.sleep(0.5)
        text = log.read_text()
        assert "share link unavailable" in text
        assert sum("share" in line.lower() for line in text.splitlines()) == 1, text
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
            assert r.status == 200
        assert "hunter22" not in log.read_text()
    finally:
        proc.terminate()
        proc.wait(20)


def test_an_empty_host_is_loopback_even_with_gradio_server_name(monkeypatch, capsys):
    """Issue 18: `--host ""` with GRADIO_SERVER_NAME=0.0.0.0 listened on every address with no
    login and no warning (Gradio reads an empty server_name as unset). Empty means not given."""
    launched = {}

    class Demo:
        def launch(self, **kw):
            launched.update(kw)

    import studio.webui.app as app

    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.delenv("BGE_STUDIO_AUTH", raising=False)
    monkeypatch.setattr(launcher, "serving_app", lambda ctx: Demo())
    monkeypatch.setattr(launcher, "_warm_in_background", lambda: None)
    monkeypatch.setattr(app, "initial_config", lambda path, base: None)
    for host in ("", "  "):
        launched.clear()
        assert launcher.main(["--host", host, "--runs-dir", "/nonexistent-runs"]) == 0
        assert launched["server_name"] == "127.0.0.1"
    assert "without a login" not in capsys.readouterr().err
    launcher.main(["--host", "0.0.0.0", "--runs-dir", "/nonexistent-runs"])
    assert launched["server_name"] == "0.0.0.0"  # an address given is kept, and warned about
    assert "listening on 0.0.0.0 without a login" in capsys.readouterr().err
