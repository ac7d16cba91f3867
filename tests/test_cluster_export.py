"""Cluster exports without a cluster: per-node scripts, the Slurm job, the SkyPilot task, and the
multi-node pre-flight rules. The scripts run for real in test_cluster_nodes.py and
test_cluster_slurm.py; here their content, their refusals and SkyPilot's own loader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

from studio.checks.preflight import run_checks
from studio.cluster import nodes, skypilot, slurm
from studio.cluster.export import export
from studio.core import command
from studio.core.config import StudioConfig, TorchrunSettings
from studio.facts.problems import ERROR

TRAIN = ROOT / "example_data" / "train.jsonl"


def small_config(**overrides) -> StudioConfig:
    args = {
        "model_name_or_path": "bundled:all-MiniLM-L6-v2",
        "train_data": [str(TRAIN)],
        "train_group_size": 2,
        "per_device_train_batch_size": 2,
        "max_steps": 3,
    }
    args.update(overrides)
    return StudioConfig(args, TorchrunSettings(), None)


def _bash_syntax_ok(path: Path) -> None:
    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_node_scripts_meet_at_the_head_with_the_command_tabs_flags(tmp_path):
    cfg = small_config()
    result = export(
        cfg,
        "nodes",
        tmp_path / "out",
        ROOT,
        nnodes=3,
        head="10.1.2.3",
        port=29400,
        nproc_per_node=2,
        socket_ifname="eth0",
    )
    assert result.ok, result.problems
    assert [p.name for p in result.files] == ["node-0.sh", "node-1.sh", "node-2.sh"]
    flags = command.flag_lines(_resolved(cfg, tmp_path / "out"))
    for rank, path in enumerate(result.files):
        text = path.read_text()
        _bash_syntax_ok(path)
        assert os.access(path, os.X_OK)
        assert "--rdzv_backend c10d --rdzv_endpoint 10.1.2.3:29400" in text
        assert "--nnodes 3 --nproc_per_node 2" in text
        assert f"--rdzv_conf is_host={1 if rank == 0 else 0}" in text
        assert "export NCCL_SOCKET_IFNAME=eth0 GLOO_SOCKET_IFNAME=eth0" in text
        assert "-m studio.training.worker" in text
        for line in flags:  # the very lines command.sh has, in order
            assert line in text
    plain = export(small_config(), "nodes", tmp_path / "plain", ROOT, nnodes=2, head="h0")
    assert "SOCKET_IFNAME" not in plain.files[0].read_text()
    assert not any(p.code == "nodes_loopback" for p in plain.problems)
    local = export(small_config(), "nodes", tmp_path / "local", ROOT, nnodes=2)
    assert local.ok and "--rdzv_endpoint 127.0.0.1:29500" in local.files[0].read_text()
    assert any(p.code == "nodes_loopback" for p in local.problems)  # a warning, not a refusal


def _resolved(cfg: StudioConfig, out: Path) -> StudioConfig:
    from studio.core.config import resolve_paths

    return resolve_paths(cfg, ROOT).with_args(output_dir=str(out.resolve() / "model"))


def test_a_node_with_other_versions_stops_before_training(tmp_path):
    result = export(
        small_config(),
        "nodes",
        tmp_path,
        ROOT,
        nnodes=2,
        head="127.0.0.1",
        versions={"FlagEmbedding": "1.4.2", "torch": "0.0.1"},
    )
    assert result.ok
    env = {k: v for k, v in os.environ.items() if k != nodes.SKIP_CHECK_ENV}
    proc = subprocess.run(
        ["bash", str(tmp_path / "node-1.sh")], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode != 0
    assert "(the studio expects 0.0.1)" in proc.stderr and "torch" in proc.stderr
    assert "pip install FlagEmbedding==1.4.2 torch==0.0.1" in proc.stderr
    assert not (tmp_path / "model").exists()  # torchrun never started


def test_export_never_replaces_files_unless_asked(tmp_path):
    out = tmp_path / "out"
    first = export(small_config(), "nodes", out, ROOT, nnodes=2, head="h0")
    assert first.ok
    (out / "node-0.sh").write_text("# mine\n")
    again = export(small_config(), "nodes", out, ROOT, nnodes=2, head="h0")
    assert not again.ok and again.problems[0].code == "export_exists"
    assert "--force" in again.problems[0].fix
    assert (out / "node-0.sh").read_text() == "# mine\n"
    forced = export(small_config(), "nodes", out, ROOT, nnodes=2, head="h0", overwrite=True)
    assert forced.ok and "c10d" in (out / "node-0.sh").read_text()


def test_unsafe_launch_values_are_refused_and_nothing_is_written(tmp_path):
    result = export(small_config(), "nodes", tmp_path / "o", ROOT, nnodes=2, head="h0; rm -rf ~")
    assert [p.code for p in result.problems if p.level == ERROR] == ["nodes_head"]
    assert not (tmp_path / "o").exists()
    bad = slurm.SlurmSettings(time="tomorrow", partition="gpu\n#SBATCH --uid=0")
    codes = [(p.field, p.code) for p in bad.problems()]
    assert ("slurm.time", "slurm_value") in codes and ("slurm.partition", "slurm_value") in codes


def test_multinode_preflight_rules():
    base = small_config(output_dir="/tmp/run/out", cache_dir="/dev/shm/hf")
    multi = StudioConfig(base.args, TorchrunSettings(nproc_per_node=1, nnodes=2), None)
    codes = {(p.code, p.field) for p in run_checks(multi, ROOT)}
    assert ("multinode_local_path", "output_dir") in codes
    assert ("multinode_local_path", "cache_dir") in codes
    single = StudioConfig(base.args, TorchrunSettings(), None)
    assert not any(p.code.startswith("multinode") for p in run_checks(single, ROOT))

    shared = small_config(output_dir="/shared/project/out")
    shared = StudioConfig(shared.args, TorchrunSettings(nnodes=2), None)
    # (only output_dir: the test data lives wherever the checkout is, /tmp included)
    assert not any(
        p.code == "multinode_local_path" and p.field == "output_dir"
        for p in run_checks(shared, ROOT)
    )

    hub = StudioConfig(
        {**shared.args, "model_name_or_path": "BAAI/bge-base-en-v1.5"}, shared.torchrun, None
    )
    (problem,) = [p for p in run_checks(hub, ROOT) if p.code == "multinode_hub_model"]
    assert "every node" in problem.message and "hf download" in problem.fix

    wide = StudioConfig(
        {**shared.args, "negatives_cross_device": True},
        TorchrunSettings(nproc_per_node=8, nnodes=2),
        None,
    )
    (problem,) = [p for p in run_checks(wide, ROOT) if p.code == "multinode_cross_device"]
    assert "16 processes" in problem.message and "64 passages" in problem.message


def test_slurm_job_script_asks_for_what_was_given(tmp_path):
    settings = slurm.SlurmSettings(
        nodes=2, gpus_per_node=4, cpus_per_task=16, time="2:00:00", partition="gpu", account="nlp"
    )
    result = export(small_config(), "slurm", tmp_path / "job", ROOT, slurm_settings=settings)
    assert result.ok, result.problems
    job = (tmp_path / "job" / "job.sbatch").read_text()
    for line in (
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --gres=gpu:4",
        "#SBATCH --cpus-per-task=16",
        "#SBATCH --time=2:00:00",
        "#SBATCH --partition=gpu",
        "#SBATCH --account=nlp",
        f"#SBATCH --output={(tmp_path / 'job' / 'train.log').resolve()}",
        'scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1',
        "srun --nodes=2 --ntasks-per-node=1",
    ):
        assert line in job, line
    node = (tmp_path / "job" / "node.sh").read_text()
    assert "--nnodes 2 --nproc_per_node 4" in node
    assert '--rdzv_endpoint "${STUDIO_HEAD:?}:${STUDIO_RDZV_PORT:-29500}"' in node
    for path in result.files:
        _bash_syntax_ok(path)


def test_skypilot_task_loads_in_skypilots_own_loader(tmp_path):
    settings = skypilot.SkyPilotSettings(nodes=2, accelerators="A100:8", bucket="my-ckpts")
    # bf16 is for the cloud's A100s: this CPU machine's hardware must not refuse it.
    cfg = StudioConfig(small_config(bf16=True).args, TorchrunSettings(nproc_per_node=8), None)
    result = export(cfg, "skypilot", tmp_path / "sky", ROOT, skypilot_settings=settings)
    assert result.ok, result.problems
    (task,) = result.files
    probe = (
        "import json, sys, sky\n"
        "t = sky.Task.from_yaml(sys.argv[1])\n"
        "(r,) = list(t.resources)\n"
        "print(json.dumps({'nodes': t.num_nodes, 'acc': r.accelerators, 'run': t.run,\n"
        "  'setup': t.setup, 'mounts': t.file_mounts,\n"
        "  'storage': {k: v.name for k, v in t.storage_mounts.items()}}))\n"
    )
    env = {**os.environ, "HOME": str(tmp_path)}  # SkyPilot writes ~/.sky
    proc = subprocess.run(
        [sys.executable, "-c", probe, str(task)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded["nodes"] == 2 and loaded["acc"] == {"A100": 8}
    assert loaded["storage"] == {"/checkpoints": "my-ckpts"}
    assert loaded["mounts"][f"{skypilot.DATA_ROOT}/0-train.jsonl"] == str(TRAIN)
    assert loaded["mounts"][skypilot.MODEL_MOUNT].endswith("model")
    for var in ("SKYPILOT_NODE_IPS", "SKYPILOT_NUM_NODES", "SKYPILOT_NODE_RANK"):
        assert var in loaded["run"]
    assert "--output_dir /checkpoints/" in loaded["run"]
    assert "-m FlagEmbedding.finetune.embedder.encoder_only.base" in loaded["run"]
    assert "FlagEmbedding==1.4.2" in loaded["setup"] and "deepspeed==" in loaded["setup"]


def test_cli_export_writes_one_script_per_node(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"model_name_or_path: bundled:all-MiniLM-L6-v2\ntrain_data: [{TRAIN}]\n")
    out = tmp_path / "nodes"
    proc = subprocess.run(
        [sys.executable, "-m", "studio", "export", str(cfg), "--target", "nodes"]
        + ["--out", str(out), "--nnodes", "3", "--head", "127.0.0.1"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["node-0.sh", "node-1.sh", "node-2.sh"]
    assert "world size 3" in (out / "node-2.sh").read_text()
    proc = subprocess.run(
        [sys.executable, "-m", "studio", "submit", str(cfg)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 2 and "--slurm" in proc.stderr
