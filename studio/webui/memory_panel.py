"""The memory estimate on the web page (Launch and Train tabs): will this config fit?

Layout and binding only; the numbers come from :func:`studio.app.actions.estimate_memory` over the
form's current config and the text from :func:`studio.app.views.memory_text`, as in the notebook.
"""

from __future__ import annotations

from studio.facts.i18n import t


def layout(reg, lang: str, elem_id: str) -> None:
    """A button and a Markdown box, registered as `<elem_id>.button` and `<elem_id>.box`."""
    import gradio as gr

    reg.text(gr.Markdown(f"### {t('memory', lang)}"), "memory")
    reg.add(f"{elem_id}.button", gr.Button(t("memory_btn", lang), elem_id=f"{elem_id}-btn"))
    reg.add(f"{elem_id}.box", gr.Markdown(elem_id=elem_id))


def bind(ctx, reg, elem_id: str) -> None:
    from studio.webui import form_state

    def estimate(data):
        from studio.app import actions, views

        cfg, _ = form_state.read_config(reg, data)
        try:
            return views.memory_text(actions.estimate_memory(ctx.ws, cfg))
        except (FileNotFoundError, KeyError, ValueError) as exc:
            return views.failure_text(exc)

    reg[f"{elem_id}.button"].click(estimate, reg.form_inputs(), reg[f"{elem_id}.box"])
