"""The memory estimate on the web page (Launch and Train tabs): will this config fit?

Layout and rendering only; the numbers come from :func:`studio.memory.estimate` over the form's
current config, the same call the CLI's ``estimate`` and the notebook make.
"""

from __future__ import annotations

from studio.i18n import t


def memory_markdown(est) -> str:
    """An estimate as Markdown: the verdict, the parts and the changes that make it fit."""
    from studio.memory import fmt_bytes

    if est.fits is None:
        verdict = ""
    elif est.fits:
        verdict = f"✅ fits, {fmt_bytes(est.headroom_bytes)} to spare"
    else:
        verdict = f"❌ does not fit: {fmt_bytes(-est.headroom_bytes)} short"
    lines = [
        f"**Peak per device: {fmt_bytes(est.peak_bytes)}** on {est.device} "
        f"({fmt_bytes(est.device_bytes)}) — {verdict}",
        "",
        "| part | size |",
        "| --- | ---: |",
        *(f"| {name} | {fmt_bytes(value)} |" for name, value in est.parts.items()),
    ]
    if est.cpu_bytes:
        lines.append(f"| offloaded to CPU | {fmt_bytes(est.cpu_bytes)} |")
    if est.changes:
        lines += ["", "**Cheapest changes that make it fit:**"]
        lines += [f"- {c.label} → {fmt_bytes(c.peak_bytes)}" for c in est.changes]
    lines += ["", *(f"*{note}*" for note in est.notes)]
    return "\n".join(lines)


def build(ctx, reg, lang: str, elem_id: str):
    """A button and a Markdown box that estimate the form's config; returns the pair."""
    import gradio as gr

    gr.Markdown(f"### {t('memory', lang)}")
    button = gr.Button(t("memory_btn", lang), elem_id=f"{elem_id}-btn")
    box = gr.Markdown(elem_id=elem_id)

    def estimate(*values):
        from studio import memory

        *values, explicit = values
        cfg, _ = reg.config_from(values, explicit)
        try:
            return memory_markdown(memory.estimate(cfg, ctx.base_dir))
        except (FileNotFoundError, KeyError, ValueError) as exc:
            return f"⚠️ {exc}"

    button.click(estimate, [*reg.inputs(), reg.explicit], box)
    return button, box
