"""The Gradio studio served from a notebook kernel and shown inline in the notebook.

The same app `python launch.py` serves (:func:`studio.webui.app.build_app`), started with
``prevent_thread_lock`` so the cell returns and the kernel stays usable; the notebook shows
it in an iframe (Gradio's ``inline``). It listens on localhost only: on a remote GPU server,
forward the port (``ssh -L 7860:127.0.0.1:7860 server``) to open it in your browser. A public
link needs a login: ``launch_web(share=True, auth=("user", "pass"))``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.core.config import StudioConfig


def launch_web(
    config: StudioConfig | str | Path | None = None,
    runs_dir: str | Path = "runs",
    base_dir: str | Path = ".",
    port: int | None = None,
    inline: bool = True,
    lang: str = "en",
    height: int = 900,
    share: bool | None = None,
    no_auth: bool = False,
    **launch_kwargs: Any,
):
    """Build the web studio over `config` (default: the quickstart) and serve it; return it.

    `port` None takes the first free port from 7860. Stop it with ``demo.close()``.
    Other keyword arguments go to Gradio's ``launch`` (e.g. ``auth=("user", "pass")``).
    `share=True` needs `auth=` (or `no_auth=True`); `share` is always passed to Gradio
    explicitly, so a Kaggle/Colab kernel or GRADIO_SHARE=true opens no public link by itself
    (studio.webui.exposure).
    """
    from studio.webui.app import CSS, AppContext, initial_config
    from studio.webui.exposure import listen_host
    from studio.webui.launcher import exposure_or_exit, serving_app

    if "server_name" in launch_kwargs:  # an empty one is "not given" (loopback), as launch.py
        launch_kwargs["server_name"] = listen_host(launch_kwargs["server_name"])

    exposure = exposure_or_exit(
        ValueError,
        share=share,
        logged_in=bool(launch_kwargs.get("auth")),
        no_auth=no_auth,
        host=launch_kwargs.get("server_name", "127.0.0.1"),
        face="notebook",
    )

    base = Path(base_dir).resolve()
    if not isinstance(config, StudioConfig):
        config = initial_config(config, base)
    ctx = AppContext(runs_dir=(base / runs_dir).resolve(), base_dir=base, lang=lang, initial=config)
    demo = serving_app(ctx)
    options = {
        "server_name": "127.0.0.1",
        "server_port": port,
        "inline": inline,
        "height": height,
        "prevent_thread_lock": True,
        "css": CSS,
        "footer_links": ["gradio"],
        **launch_kwargs,
        "share": exposure.share,
    }
    demo.launch(**options)
    return demo
