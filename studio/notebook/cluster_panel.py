"""The notebook's "Past one machine" box (under Command): export for a cluster, submit to Slurm.

Each button calls a :class:`studio.notebook.Studio` method (``export``, ``submit_slurm``), the
same core functions as the CLI and the web UI.
"""

from __future__ import annotations

import html


def cluster_panel(studio):
    import ipywidgets as w

    from studio.cluster.export import TARGETS
    from studio.facts.i18n import t
    from studio.notebook.actions import wire

    lang = studio.lang
    style = {"description_width": "initial"}
    target = w.Dropdown(options=list(TARGETS), value="nodes", description=t("cluster_target", lang))
    out_dir = w.Text("cluster-job", description=t("cluster_out", lang), style=style)
    nnodes = w.BoundedIntText(2, min=1, max=10000, description=t("nnodes", lang), style=style)
    head = w.Text("127.0.0.1", description=t("cluster_head", lang), style=style)
    gpus = w.BoundedIntText(0, min=0, max=1024, description=t("cluster_gpus", lang), style=style)
    partition = w.Text("", description=t("cluster_partition", lang), style=style)
    time_limit = w.Text("", description=t("cluster_time", lang), style=style)
    export_button = w.Button(description=t("cluster_export", lang))
    submit_button = w.Button(description=t("cluster_submit", lang), button_style="primary")
    message = w.HTML()

    def do_export():
        from studio.app import views

        result = studio.export(
            target.value,
            out_dir.value,
            nnodes=nnodes.value,
            head=head.value or None,
            nproc_per_node=gpus.value or None,
        )
        message.value = views.to_html(views.export_text(result))

    def do_submit():
        run_dir = studio.submit_slurm(
            nodes=nnodes.value,
            gpus_per_node=gpus.value,
            partition=partition.value or None,
            time=time_limit.value or None,
        )
        status = studio.status()
        message.value = html.escape(
            f"Slurm job {status.get('job_id')}: {run_dir.name} ({status.get('state')})"
        )

    wire(export_button, do_export, message)
    wire(submit_button, do_submit, message)
    return w.VBox(
        [
            w.HTML(f"<b>{html.escape(t('cluster', lang))}</b>"),
            w.HBox([target, out_dir]),
            w.HBox([nnodes, head, gpus]),
            w.HBox([partition, time_limit]),
            w.HBox([export_button, submit_button]),
            message,
        ]
    )
