"""Command-line options of `launch.py`, the login rules, and starting the server."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from studio.webui.exposure import decide, listen_host


class LaunchError(SystemExit):
    def __init__(self, message: str):
        print(f"error: {message}", file=sys.stderr)
        super().__init__(2)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python launch.py", description="BGE Studio web UI")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: localhost)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--runs-dir", default="runs", help="folder of run folders (default: ./runs)")
    p.add_argument("--config", help="config to open (default: example_data/quickstart.yaml)")
    p.add_argument(
        "--share",
        action="store_true",
        default=None,  # absent: share only if GRADIO_SHARE=true and a login is set
        help="also serve on a public share link (needs a login, or --no-auth)",
    )
    p.add_argument(
        "--auth", help="login as USER:PASS (visible in `ps`: prefer --auth-file or BGE_STUDIO_AUTH)"
    )
    p.add_argument("--auth-file", help="file with one USER:PASS per line")
    p.add_argument(
        "--no-auth",
        action="store_true",
        help="allow --share without a login (anyone with the link can run jobs)",
    )
    p.add_argument("--lang", default="en", choices=["en", "zh"])
    return p


def parse_credentials(args) -> list[tuple[str, str]]:
    """Logins from --auth, --auth-file and BGE_STUDIO_AUTH; errors name the file and line."""
    creds: list[tuple[str, str]] = []
    sources = []
    if args.auth:
        sources.append(("--auth", 0, args.auth))
    if os.environ.get("BGE_STUDIO_AUTH"):
        sources.append(("BGE_STUDIO_AUTH", 0, os.environ["BGE_STUDIO_AUTH"]))
    if args.auth_file:
        try:
            lines = Path(args.auth_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise LaunchError(f"cannot read --auth-file {args.auth_file}: {exc.strerror}") from None
        sources += [
            (args.auth_file, i, line.strip())
            for i, line in enumerate(lines, 1)
            if line.strip() and not line.strip().startswith("#")
        ]
    for where, line, text in sources:
        user, sep, password = text.partition(":")
        if not sep or not user or not password:
            at = f"{where}:{line}" if line else where
            raise LaunchError(
                f"{at}: a login must look like USER:PASS (the password is not shown here)"
            )
        creds.append((user, password))
    return creds


def _warm_in_background() -> None:
    """Import plotly while the server starts, so the first live chart does not wait a second
    for it (it is not needed to serve the page, so start-up does not pay for it either)."""
    import threading

    def warm() -> None:
        from plotly.subplots import make_subplots

        make_subplots(rows=3, cols=1)

    threading.Thread(target=warm, name="warm-plotly", daemon=True).start()


def _patient_localhost_check() -> None:
    """Gradio refuses to start when one HEAD request to its own page takes over 3 s, which
    happens on a busy 2-core machine (a training run beside it). Give it up to 30 s."""
    import time

    from gradio import networking

    original = networking.url_ok
    if getattr(original, "studio_patient", False):  # applied once per process
        return

    def url_ok(url: str) -> bool:
        deadline = time.monotonic() + 30
        while not original(url):
            if time.monotonic() > deadline:
                return False
        return True

    url_ok.studio_patient = True
    networking.url_ok = url_ok


def _launch_shared(demo, launch_kwargs: dict, args) -> None:
    """Serve locally and try the share tunnel; a failed tunnel is one line, not a wall of text."""
    import contextlib
    import io

    chatter = io.StringIO()  # Gradio prints a multi-line download guide when the tunnel fails
    with contextlib.redirect_stdout(chatter):
        try:
            demo.launch(share=True, prevent_thread_lock=True, **launch_kwargs)
        except Exception as exc:  # noqa: BLE001 - any tunnel failure: keep serving locally
            print(type(exc).__name__)
            demo.launch(share=False, prevent_thread_lock=True, **launch_kwargs)
    local = f"http://{args.host}:{args.port}"
    print(f"* Running on local URL:  {local}", flush=True)
    if getattr(demo, "share_url", None):
        print(f"* Share link (login required unless --no-auth): {demo.share_url}", flush=True)
    else:
        print(
            "share link unavailable: the share server cannot be reached from this machine; "
            f"serving locally only at {local}",
            file=sys.stderr,
            flush=True,
        )


def exposure_or_exit(error: type[Exception], **decision):
    """Whether to open a share link (studio.webui.exposure.decide's rule, the same for
    launch.py and the notebook): its warnings printed, its refusal raised as `error`."""
    exposure = decide(**decision)
    for note in exposure.warnings:
        print(f"warning: {note}", file=sys.stderr, flush=True)
    if exposure.error:
        raise error(exposure.error)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import warnings

    # Gradio 6.17 trips Starlette's rename of HTTP_422 on every request; not ours to fix.
    warnings.filterwarnings("ignore", message=".*HTTP_422_UNPROCESSABLE_ENTITY.*")
    return exposure


def serving_app(ctx):
    """The page over `ctx`, queued as both faces serve it (8 events at once)."""
    from studio.webui.app import build_app

    demo = build_app(ctx)
    _patient_localhost_check()
    demo.queue(default_concurrency_limit=8)
    return demo


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.host = listen_host(args.host)  # `--host ""` is not "every address"
    creds = parse_credentials(args)
    exposure = exposure_or_exit(
        LaunchError,
        share=args.share,  # None when --share is not given: GRADIO_SHARE/hosted notebooks decide
        logged_in=bool(creds),
        no_auth=args.no_auth,
        host=args.host,
        auth_on_command_line=bool(args.auth),
    )
    from studio.webui.app import CSS, AppContext, initial_config

    base_dir = Path.cwd()
    ctx = AppContext(
        runs_dir=Path(args.runs_dir).resolve(),
        base_dir=base_dir,
        lang=args.lang,
        initial=initial_config(args.config, base_dir),
    )
    demo = serving_app(ctx)
    _warm_in_background()
    launch_kwargs = dict(
        server_name=args.host,
        server_port=args.port,
        css=CSS,
        auth=creds or None,
        footer_links=["gradio"],
        auth_message="BGE Studio: log in to continue.",
    )
    if exposure.share:
        _launch_shared(demo, launch_kwargs, args)
        demo.block_thread()
    else:
        demo.launch(share=False, **launch_kwargs)  # explicit: Gradio would decide by itself
    return 0
