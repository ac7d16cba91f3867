"""The faces of the cluster core: the web UI's "Past one machine" section and the notebook's.

Both call studio.cluster.export.export (and slurm.submit); here their wiring writes the same
files the CLI does. The scripts themselves run for real in test_cluster_nodes.py and
test_cluster_slurm.py.
"""

from __future__ import annotations

from conftest import ROOT

from studio.cluster.skypilot import SkyPilotSettings
from studio.core import config as config_mod

QUICKSTART = ROOT / "example_data" / "quickstart.yaml"


def test_web_export_button_writes_the_slurm_job_from_the_form(tmp_path):
    import gradio as gr

    from studio.webui.app import AppContext, build_app

    ctx = AppContext(tmp_path / "runs", ROOT, initial=config_mod.load(QUICKSTART))
    demo = build_app(ctx)
    (fn,) = [f for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "do_export"]
    by_label = {getattr(c, "label", None): c for c in fn.inputs}
    data = {c: c.value for c in fn.inputs}  # what the page holds before anyone types
    data[by_label["Export as"]] = "slurm"
    data[by_label["Folder to write into"]] = str(tmp_path / "job")
    data[by_label["Time limit (Slurm)"]] = "1:00:00"
    data[by_label["Partition (Slurm)"]] = "gpu"
    message = fn.fn(data)
    assert "wrote node.sh, job.sbatch, ds_config.json" in message, message
    job = (tmp_path / "job" / "job.sbatch").read_text()
    assert "#SBATCH --partition=gpu" in job and "#SBATCH --time=1:00:00" in job
    assert "#SBATCH --nodes=2" in job  # the section's node count
    # The form's flags, as the Command tab shows them, are in the node script.
    assert "--max_steps 20" in (tmp_path / "job" / "node.sh").read_text()
    assert isinstance(demo, gr.Blocks)


def test_notebook_export_button_writes_one_script_per_node(tmp_path):
    from studio.notebook import Studio

    st = Studio(QUICKSTART, runs_dir=tmp_path / "runs", base_dir=ROOT)
    try:
        st.set(max_steps=7)
        panel = st.command_panel().children[-1]
        target, out_dir = panel.children[1].children
        nnodes, head, _gpus = panel.children[2].children
        export_button, _submit = panel.children[4].children
        message = panel.children[5]
        out_dir.value = str(tmp_path / "nodes")
        nnodes.value = 3
        head.value = "10.0.0.1"
        export_button.click()
        assert "wrote node-0.sh, node-1.sh, node-2.sh" in message.value, message.value
        text = (tmp_path / "nodes" / "node-2.sh").read_text()
        assert "--rdzv_endpoint 10.0.0.1:29500" in text and "--max_steps 7" in text
        # The same through the method a cell would call.
        result = st.export(
            "skypilot", tmp_path / "sky", skypilot_settings=SkyPilotSettings(nodes=2)
        )
        assert result.ok and (tmp_path / "sky" / "task.yaml").is_file()
    finally:
        st.close()
