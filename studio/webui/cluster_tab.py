"""The Command tab's "Past one machine" section: export for a cluster, submit to Slurm.

Both buttons read the form as it is now and call the core (:func:`studio.cluster.export.export`,
:func:`studio.cluster.slurm.submit`); a submitted run then appears in the Runs tab like any other,
with Slurm's state and reason.
"""

from __future__ import annotations

from pathlib import Path

from studio.i18n import t


def _int(value) -> int | None:
    return int(value) if value not in (None, "") and int(value) > 0 else None


def _text(value) -> str | None:
    return str(value).strip() or None if value is not None else None


def slurm_settings(nodes, gpus, cpus, time_limit, partition, account, ifname):
    """The form's Slurm fields (blank: the cluster's default) as SlurmSettings."""
    from studio.cluster import slurm

    return slurm.SlurmSettings(
        nodes=_int(nodes),
        gpus_per_node=_int(gpus) or 0,
        cpus_per_task=_int(cpus),
        time=_text(time_limit),
        partition=_text(partition),
        account=_text(account),
        socket_ifname=_text(ifname),
    )


def export_from_form(
    ctx,
    cfg,
    target,
    out,
    nodes,
    head,
    ifname,
    gpus,
    cpus,
    time_limit,
    partition,
    account,
    accelerators,
) -> str:
    """Export button: the core's export, its summary and problems as Markdown."""
    from studio.cluster import skypilot
    from studio.cluster.export import export
    from studio.webui.app import problems_markdown

    result = export(
        cfg,
        target,
        Path(ctx.base_dir) / out,
        ctx.base_dir,
        nnodes=_int(nodes),
        head=_text(head),
        nproc_per_node=_int(gpus),
        socket_ifname=_text(ifname),
        slurm_settings=slurm_settings(nodes, gpus, cpus, time_limit, partition, account, ifname),
        skypilot_settings=skypilot.SkyPilotSettings(
            nodes=_int(nodes), accelerators=_text(accelerators)
        ),
    )
    return f"**{result.summary()}**\n\n" + problems_markdown(result.problems)


def submit_from_form(ctx, cfg, nodes, ifname, gpus, cpus, time_limit, partition, account) -> str:
    """Submit button: sbatch through the core; the run's status line (raises on refusal)."""
    from studio import runs
    from studio.cluster import slurm
    from studio.webui.app import status_markdown

    run_dir = slurm.submit(
        cfg,
        slurm_settings(nodes, gpus, cpus, time_limit, partition, account, ifname),
        ctx.runs_dir,
        ctx.base_dir,
    )
    status = runs.refresh(run_dir)
    return status_markdown(Path(run_dir), status) + f" (Slurm job {status.get('job_id')})"


def build(ctx, reg, lang: str):
    import gradio as gr

    from studio.cluster.export import TARGETS
    from studio.webui.app import problems_markdown

    gr.Markdown(t("cluster_intro", lang))
    with gr.Row():
        target = gr.Radio(list(TARGETS), value="nodes", label=t("cluster_target", lang))
        out_dir = gr.Textbox("cluster-job", label=t("cluster_out", lang), elem_id="cluster-out")
    with gr.Row():
        nnodes = gr.Number(2, precision=0, minimum=1, label=t("nnodes", lang))
        head = gr.Textbox("127.0.0.1", label=t("cluster_head", lang))
        ifname = gr.Textbox("", label=t("cluster_ifname", lang))
    with gr.Row():
        gpus = gr.Number(0, precision=0, minimum=0, label=t("cluster_gpus", lang))
        cpus = gr.Number(None, precision=0, minimum=1, label=t("cluster_cpus", lang))
        time_limit = gr.Textbox("", label=t("cluster_time", lang))
        partition = gr.Textbox("", label=t("cluster_partition", lang))
        account = gr.Textbox("", label=t("cluster_account", lang))
        accelerators = gr.Textbox("", label=t("cluster_accelerators", lang))
    with gr.Row():
        export_btn = gr.Button(t("cluster_export", lang), elem_id="cluster-export")
        submit_btn = gr.Button(
            t("cluster_submit", lang), variant="primary", elem_id="cluster-submit"
        )
    message = gr.Markdown(elem_id="cluster-message")

    # Bound by name (a set of inputs: one dict keyed by component), not by position.
    fields = {target, out_dir, nnodes, head, ifname, gpus, cpus, time_limit, partition, account}
    fields |= {accelerators, reg.explicit, *reg.inputs()}

    def current(data):
        values = [data[c] for c in reg.inputs()]
        cfg, problems = reg.config_from(values, data[reg.explicit])
        if any(p.level == "error" for p in problems):
            raise gr.Error(problems_markdown(problems))
        return cfg

    def slurm_fields(data):
        return [data[c] for c in (nnodes, ifname, gpus, cpus, time_limit, partition, account)]

    def do_export(data):
        n, ifn, g, c, tl, part, acct = slurm_fields(data)
        return export_from_form(
            ctx,
            current(data),
            data[target],
            data[out_dir],
            n,
            data[head],
            ifn,
            g,
            c,
            tl,
            part,
            acct,
            data[accelerators],
        )

    def do_submit(data):
        from studio import runs
        from studio.cluster import slurm

        try:
            return submit_from_form(ctx, current(data), *slurm_fields(data))
        except runs.PreflightFailed as exc:
            raise gr.Error(problems_markdown(exc.problems)) from None
        except slurm.SlurmError as exc:
            raise gr.Error(f"Slurm refused the job: {exc}") from None

    export_btn.click(do_export, fields, message)
    submit_btn.click(do_submit, fields, message)
    return None
