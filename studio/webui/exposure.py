"""Who can reach the studio: the one rule both faces (launch.py, notebook launch_web) apply.

The page starts processes and reads files, so reaching it is running code on this machine.
Gradio opens a public share link by itself when `launch()` gets no `share` and it runs in
Colab, Kaggle or SageMaker, or when `GRADIO_SHARE=true`. The studio therefore always passes
`share` explicitly, decided here:

- a public link needs a login (`--auth-file`, `BGE_STUDIO_AUTH`, `--auth`; `auth=` in a
  notebook) or an explicit `--no-auth` / `no_auth=True`; asked for without either, it is
  refused (an error), and where only the environment asked for it (`GRADIO_SHARE=true`, a
  hosted notebook) the studio serves locally and says why;
- listening on another address than loopback without a login is a warning;
- `--auth USER:PASS` on the command line is a warning: every user of the machine sees it
  in `ps`.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

LOGIN_HINT = "--auth-file FILE (one USER:PASS per line) or BGE_STUDIO_AUTH=USER:PASS"


@dataclass
class Exposure:
    """What to pass to Gradio, and what to tell the user first."""

    share: bool
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


def hosted_notebook(environ: Mapping[str, str] | None = None) -> str | None:
    """The hosted notebook Gradio would open a public link for by itself (its own checks)."""
    environ = os.environ if environ is None else environ
    if environ.get("KAGGLE_KERNEL_RUN_TYPE"):
        return "Kaggle"
    if os.path.exists("/home/ec2-user/SageMaker"):
        return "SageMaker"
    if "google.colab" in sys.modules:
        return "Colab"
    return None


LOOPBACK = "127.0.0.1"


def listen_host(host: str | None) -> str:
    """The address to pass to Gradio: an empty or blank host is "not given" (loopback). Gradio
    itself reads an empty ``server_name`` as unset and takes ``GRADIO_SERVER_NAME`` (often
    0.0.0.0 in containers), so `--host ""` listened on every address with no login and no
    warning."""
    text = str(host or "").strip()
    return text or LOOPBACK


def is_loopback(host: str | None) -> bool:
    if not host or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def decide(
    share: bool | None,
    logged_in: bool,
    no_auth: bool = False,
    host: str | None = "127.0.0.1",
    auth_on_command_line: bool = False,
    environ: Mapping[str, str] | None = None,
    face: str = "launch.py",
) -> Exposure:
    """The `share` value to pass and the messages, for an explicit `share` (True/False) or
    none (None: what the environment would make Gradio do)."""
    environ = os.environ if environ is None else environ
    notes: list[str] = []
    no_auth_opt = "--no-auth" if face == "launch.py" else "no_auth=True"
    login_opt = LOGIN_HINT if face == "launch.py" else 'auth=("USER", "PASS")'
    if auth_on_command_line:
        notes.append(
            "--auth USER:PASS on the command line is visible to every user of this machine "
            f"(`ps`, shell history); prefer {LOGIN_HINT}."
        )
    env_share = environ.get("GRADIO_SHARE", "").strip().lower() == "true"
    hosted = hosted_notebook(environ)
    wanted = bool(share) if share is not None else env_share
    if wanted and not logged_in and not no_auth:
        if share:
            return Exposure(
                False,
                error=(
                    "a share link makes the studio reachable from the internet, and the page "
                    f"can start processes and read files. Give a login ({login_opt}), or pass "
                    f"{no_auth_opt} to share without one."
                ),
                warnings=notes,
            )
        notes.append(
            "GRADIO_SHARE=true asks for a public link, but no login is set: serving locally "
            f"only. Give a login ({login_opt}) to share."
        )
        wanted = False
    elif share is None and hosted and not wanted:
        notes.append(
            f"{hosted} detected: Gradio would open a public link here by itself; the studio "
            f"does not. Ask for one with a login ({login_opt})."
        )
    if wanted and no_auth and not logged_in:
        notes.append("sharing WITHOUT a login: anyone with the link can run jobs on this machine.")
    if not is_loopback(host) and not logged_in:
        notes.append(
            f"listening on {host} without a login: anyone who can reach this port can start "
            f"processes and read files on this machine. Give a login ({login_opt})."
        )
    return Exposure(wanted, warnings=notes)
