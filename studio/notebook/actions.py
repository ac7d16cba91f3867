"""Buttons that call a studio method and show its failure where the user is looking.

A callback's exception in ipywidgets goes to the browser console or a log nobody reads; a
button here catches it and writes the problem (with its fix, when the core gave one) into
the panel's message line instead, so a click never fails silently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def describe_failure(exc: BaseException) -> str:
    """HTML for a failed action: the text the web page shows for it (views.failure_text)."""
    from studio.app import views

    return views.to_html(views.failure_text(exc))


def wire(button, action: Callable[[], Any], message) -> None:
    """On click: clear `message`, run `action`, show its failure in `message`.

    Clicks queue up in the kernel while an action runs, so nothing runs twice at once.
    """

    def handler(_button) -> None:
        message.value = ""
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - shown to the user; the kernel goes on
            message.value = describe_failure(exc)

    button.on_click(handler)
