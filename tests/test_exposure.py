"""Who can reach the studio: no public link without a login, in both faces.

Gradio opens a public link by itself when launch() gets no `share` and GRADIO_SHARE=true or a
hosted notebook (Kaggle, Colab, SageMaker) is detected. The end-to-end test starts the real
launch.py with those variables and watches every DNS lookup the process makes (a Python audit
hook loaded through sitecustomize): the share tunnel starts by resolving Gradio's share
server, so no such lookup means no attempt.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import ROOT

from studio.webui.exposure import decide

NOTE_HOOK = """
import os, sys, json
_log = os.environ["STUDIO_TEST_NETLOG"]
def _hook(event, args):
    if event == "socket.getaddrinfo":
        host = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
        if host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "None"):
            with open(_log, "a") as fh:
                fh.write(json.dumps(host) + "\\n")
sys.addaudithook(_hook)
"""


def test_share_is_always_decided_and_needs_a_login():
    assert decide(None, logged_in=False, environ={}).share is False
    assert decide(True, logged_in=True, environ={}).share is True
    refused = decide(True, logged_in=False, environ={})
    assert refused.share is False and "--no-auth" in refused.error
    forced = decide(True, logged_in=False, no_auth=True, environ={})
    assert forced.share is True and any("WITHOUT a login" in w for w in forced.warnings)


def test_environment_asks_for_a_link_but_gets_none_without_a_login():
    env = decide(None, logged_in=False, environ={"GRADIO_SHARE": "true"})
    assert env.share is False and env.error is None and "serving locally" in env.warnings[0]
    assert decide(None, logged_in=True, environ={"GRADIO_SHARE": "True"}).share is True
    kaggle = decide(None, logged_in=False, environ={"KAGGLE_KERNEL_RUN_TYPE": "Interactive"})
    assert kaggle.share is False and "Kaggle" in kaggle.warnings[0]
    assert decide(False, logged_in=True, environ={"GRADIO_SHARE": "true"}).share is False


def test_open_address_without_login_and_auth_on_command_line_warn():
    (open_host,) = decide(None, logged_in=False, host="0.0.0.0", environ={}).warnings
    assert "0.0.0.0 without a login" in open_host
    assert decide(None, logged_in=True, host="0.0.0.0", environ={}).warnings == []
    assert decide(None, logged_in=False, host="::1", environ={}).warnings == []
    (ps,) = decide(None, logged_in=True, auth_on_command_line=True, environ={}).warnings
    assert "`ps`" in ps and "--auth-file" in ps and "BGE_STUDIO_AUTH" in ps


def test_notebook_face_refuses_a_public_link_without_login_and_passes_share(monkeypatch):
    from studio.notebook import web

    with pytest.raises(ValueError, match="no_auth=True"):
        web.launch_web(share=True)
    launched = {}

    class Demo:
        def queue(self, **kw):
            pass

        def launch(self, **kw):
            launched.update(kw)

    import studio.webui.app as app

    monkeypatch.setattr(app, "build_app", lambda ctx: Demo())
    monkeypatch.setenv("GRADIO_SHARE", "true")
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    web.launch_web(port=7999)
    assert launched["share"] is False  # explicit, so Gradio cannot turn it on by itself
    web.launch_web(port=7999, share=True, auth=("u", "long-password"))
    assert launched["share"] is True and launched["auth"] == ("u", "long-password")


def _start(tmp_path, args, env_extra):
    port = 7900 + (os.getpid() + len(args)) % 90
    hook_dir = tmp_path / "hook"
    hook_dir.mkdir(exist_ok=True)
    (hook_dir / "sitecustomize.py").write_text(NOTE_HOOK)
    netlog = tmp_path / "net.log"
    netlog.write_text("")
    env = {
        **os.environ,
        **env_extra,
        "STUDIO_TEST_NETLOG": str(netlog),
        "PYTHONPATH": os.pathsep.join([str(hook_dir), str(ROOT)]),
    }
    env.pop("BGE_STUDIO_AUTH", None)
    out = tmp_path / "out.log"
    with out.open("w") as fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "launch.py",
                "--port",
                str(port),
                "--runs-dir",
                str(tmp_path / "r"),
                *args,
            ],
            cwd=ROOT,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
        )
    return proc, port, out, netlog


@pytest.mark.slow
def test_gradio_share_and_kaggle_without_login_serve_locally_with_no_link_attempt(tmp_path):
    proc, port, out, netlog = _start(
        tmp_path, [], {"GRADIO_SHARE": "true", "KAGGLE_KERNEL_RUN_TYPE": "Interactive"}
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and "Running on local URL" not in out.read_text():
            assert proc.poll() is None, out.read_text()
            time.sleep(0.5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as r:
            assert r.status == 200
        time.sleep(3)  # a tunnel attempt would follow the local start at once
        text = out.read_text()
        assert "GRADIO_SHARE=true asks for a public link, but no login is set" in text
        assert "public URL" not in text and "Could not create share link" not in text
        lookups = [json.loads(line) for line in netlog.read_text().splitlines()]
        assert not [h for h in lookups if "gradio" in h], lookups
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.slow
def test_the_lookup_watch_sees_a_share_attempt(tmp_path):
    """The control: with a login, GRADIO_SHARE=true does try the tunnel, and the hook sees it."""
    logins = tmp_path / "logins.txt"
    logins.write_text("alice:a-long-password\n")
    proc, port, out, netlog = _start(
        tmp_path, ["--auth-file", str(logins)], {"GRADIO_SHARE": "true"}
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and "share link" not in out.read_text():
            assert proc.poll() is None, out.read_text()
            time.sleep(0.5)
        lookups = [json.loads(line) for line in netlog.read_text().splitlines()]
        assert [h for h in lookups if "gradio" in h], (lookups, out.read_text())
    finally:
        proc.terminate()
        proc.wait(30)
