"""The Command tab's "Past one machine" section: export for a cluster, submit to Slurm.

Both buttons read the form as it is now and call the core (:func:`studio.cluster.export.export`,
:func:`studio.cluster.slurm.submit`); a submitted run then appears in the Runs tab like any other,
with Slurm's state and reason.
"""

from __future__ import annotations

from pathlib import Path

from studio.facts.i18n import t


def _int(value) -> int | None:
    return int(value) if value not in (None, "") and int(value) > 0 else None


def _text(value) -> str | None:
    return str(value).strip() or None if value is not None else None


def slurm_settings(s: dict):
    """The section's Slurm fields (blank: the cluster's default) as SlurmSettings."""
    from studio.cluster import slurm

    return slurm.SlurmSettings(
        nodes=_int(s["nodes"]),
        gpus_per_node=_int(s["gpus"]) or 0,
        cpus_per_task=_int(s["cpus"]),
        time=_text(s["time"]),
        partition=_text(s["partition"]),
        account=_text(s["account"]),
        socket_ifname=_text(s["ifname"]),
    )


def export_from_form(ctx, cfg, target, out, settings: dict) -> str:
    """Export button: the core's export, its summary and problems as Markdown. `settings` are
    the section's fields by name (nodes, head, ifname, gpus, cpus, time, partition, account,
    accelerators)."""
    from studio.app import views
    from studio.cluster import skypilot
    from studio.cluster.export import export

    s = settings
    result = export(
        cfg,
        target,
        Path(ctx.base_dir) / out,
        ctx.base_dir,
        nnodes=_int(s["nodes"]),
        head=_text(s["head"]),
        nproc_per_node=_int(s["gpus"]),
        socket_ifname=_text(s["ifname"]),
        slurm_settings=slurm_settings(s),
        skypilot_settings=skypilot.SkyPilotSettings(
            nodes=_int(s["nodes"]), accelerators=_text(s["accelerators"])
        ),
    )
    return views.export_text(result)


def submit_from_form(ctx, cfg, settings: dict) -> str:
    """Submit button: sbatch through the core; the run's status text (raises on refusal)."""
    from studio.app import views
    from studio.cluster import slurm
    from studio.training import runs

    run_dir = slurm.submit(cfg, slurm_settings(settings), ctx.runs_dir, ctx.base_dir)
    status = runs.refresh(run_dir)
    return views.status_text(Path(run_dir), status) + f" (Slurm job {status.get('job_id')})"


SETTINGS = ("nodes", "head", "ifname", "gpus", "cpus", "time", "partition", "account")
SETTINGS += ("accelerators",)


def layout(reg, lang: str) -> None:
    import gradio as gr

    from studio.cluster.export import TARGETS

    def add(key, component):
        reg.add(f"cluster.{key}", component)

    gr.Markdown(t("cluster_intro", lang))
    with gr.Row():
        add("target", gr.Radio(list(TARGETS), value="nodes", label=t("cluster_target", lang)))
        add("out", gr.Textbox("cluster-job", label=t("cluster_out", lang), elem_id="cluster-out"))
    with gr.Row():
        add("nodes", gr.Number(2, precision=0, minimum=1, label=t("nnodes", lang)))
        add("head", gr.Textbox("127.0.0.1", label=t("cluster_head", lang)))
        add("ifname", gr.Textbox("", label=t("cluster_ifname", lang)))
    with gr.Row():
        add("gpus", gr.Number(0, precision=0, minimum=0, label=t("cluster_gpus", lang)))
        add("cpus", gr.Number(None, precision=0, minimum=1, label=t("cluster_cpus", lang)))
        add("time", gr.Textbox("", label=t("cluster_time", lang)))
        add("partition", gr.Textbox("", label=t("cluster_partition", lang)))
        add("account", gr.Textbox("", label=t("cluster_account", lang)))
        add("accelerators", gr.Textbox("", label=t("cluster_accelerators", lang)))
    with gr.Row():
        add("export", gr.Button(t("cluster_export", lang), elem_id="cluster-export"))
        add(
            "submit",
            gr.Button(t("cluster_submit", lang), variant="primary", elem_id="cluster-submit"),
        )
    add("message", gr.Markdown(elem_id="cluster-message"))


def bind(ctx, reg) -> None:
    import gradio as gr

    from studio.webui import form_state

    section = reg.section("cluster.")
    fields = {section[k] for k in ("target", "out", *SETTINGS)} | reg.form_inputs()

    def settings(data) -> dict:
        return {key: data[section[key]] for key in SETTINGS}

    def do_export(data):
        cfg = form_state.valid_config(reg, data)
        return export_from_form(
            ctx, cfg, data[section["target"]], data[section["out"]], settings(data)
        )

    def do_submit(data):
        from studio.cluster import slurm

        cfg = form_state.valid_config(reg, data)
        with form_state.shown_errors():
            try:
                return submit_from_form(ctx, cfg, settings(data))
            except slurm.SlurmError as exc:
                raise gr.Error(f"Slurm refused the job: {exc}") from None

    section["export"].click(do_export, fields, section["message"])
    section["submit"].click(do_submit, fields, section["message"])
