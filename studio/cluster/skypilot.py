"""SkyPilot: the run as a task YAML for any cloud or Kubernetes (``sky launch task.yaml``).

The cloud's nodes have neither this machine's files nor the studio, so the task:

* mounts what the config reads (``file_mounts``): each local training-data path under
  ``/studio/data/``, a local model folder at ``/studio/model``, the DeepSpeed JSON, and a bucket
  for the checkpoints at ``/checkpoints`` (``output_dir`` points into it, so the model outlives
  the cluster);
* installs the pinned FlagEmbedding, transformers and DeepSpeed in ``setup`` (torch as the
  cloud image has it, CUDA build included);
* runs FlagEmbedding's own module through torchrun on every node, the head being the first of
  ``SKYPILOT_NODE_IPS``, with ``SKYPILOT_NUM_NODES`` nodes and this node's
  ``SKYPILOT_NODE_RANK``: the flags are :func:`studio.core.command.flag_lines`, as in command.sh.

Submitting needs a cloud account (``sky launch -c NAME task.yaml``); nothing here talks to one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path

import yaml

from studio.core import command, deepspeed_config
from studio.core.config import StudioConfig
from studio.facts import modules

DATA_ROOT = "/studio/data"
MODEL_MOUNT = "/studio/model"
DS_MOUNT = "/studio/ds_config.json"
CHECKPOINTS = "/checkpoints"
RDZV_PORT = 29500


@dataclass(frozen=True)
class SkyPilotSettings:
    """The cloud resources; the bucket holds the checkpoints and the final model."""

    nodes: int | None = None  # None: the config's torchrun.nnodes
    accelerators: str | None = None  # e.g. A100:8, H100:8, L4:1; None: any GPU, per config
    bucket: str | None = None  # None: studio-<run name>
    bucket_store: str | None = None  # s3, gcs, azure, r2...; None: the cloud's own
    cloud: str | None = None  # None: SkyPilot picks the cheapest it can use
    name: str | None = None


def accelerators(settings: SkyPilotSettings, config: StudioConfig) -> str:
    """``TYPE:COUNT`` as SkyPilot reads it; the default asks for one A100 per process."""
    return settings.accelerators or f"A100:{config.torchrun.nproc_per_node}"


def gpus_per_node(settings: SkyPilotSettings, config: StudioConfig) -> int:
    _, _, count = accelerators(settings, config).partition(":")
    try:
        return max(1, int(float(count))) if count else 1
    except ValueError:
        return 1


def _pins() -> list[str]:
    """The versions this studio runs (torch excepted: the cloud image's CUDA build stays)."""
    pins = []
    for package in ("FlagEmbedding", "transformers", "deepspeed", "sentence-transformers"):
        try:
            pins.append(f"{package}=={metadata.version(package).split('+')[0]}")
        except metadata.PackageNotFoundError:
            pins.append(package)
    return pins


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:50] or "run"


def cloud_config(config: StudioConfig, ds_file: Path | None) -> tuple[StudioConfig, dict]:
    """The config with local paths replaced by their mount points, and the ``file_mounts``."""
    mounts: dict = {}
    args = dict(config.args)
    data = []
    for i, path in enumerate(args.get("train_data") or []):
        target = f"{DATA_ROOT}/{i}-{Path(path).name}"
        mounts[target] = str(path)
        data.append(target)
    if data:
        args["train_data"] = data
    model = str(args.get("model_name_or_path") or "")
    if model and Path(model).is_dir():
        mounts[MODEL_MOUNT] = model
        args["model_name_or_path"] = MODEL_MOUNT
    for local_only in ("cache_dir", "cache_path", "logging_dir"):
        args.pop(local_only, None)  # this machine's folders mean nothing on the cloud's nodes
    if ds_file is not None:
        mounts[DS_MOUNT] = str(ds_file)
    return replace(config, args=args), mounts


class _Literal(str):
    """A string dumped as a YAML block (``|``), so setup and run read as scripts."""


def _literal(dumper: yaml.SafeDumper, value: _Literal):
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")


yaml.SafeDumper.add_representer(_Literal, _literal)


def render_task(
    config: StudioConfig,
    settings: SkyPilotSettings | None = None,
    ds_file: Path | None = None,
    label: str = "run",
) -> str:
    """The task YAML for ``config`` (its paths already absolute)."""
    settings = settings or SkyPilotSettings()
    nnodes = settings.nodes or config.torchrun.nnodes
    name = settings.name or f"studio-{_slug(label)}"
    bucket = settings.bucket or f"studio-{_slug(label)}-checkpoints"
    cloud_cfg, mounts = cloud_config(config, ds_file)
    cloud_cfg = cloud_cfg.with_args(output_dir=f"{CHECKPOINTS}/{_slug(label)}")
    store = {"name": bucket, "mode": "MOUNT"}
    if settings.bucket_store:
        store["store"] = settings.bucket_store
    mounts[CHECKPOINTS] = store
    resources: dict = {"accelerators": accelerators(settings, config)}
    if settings.cloud:
        resources["cloud"] = settings.cloud
    flag_lines = [
        line.replace(f'"$HERE/{deepspeed_config.DS_FILE_NAME}"', DS_MOUNT)
        for line in command.flag_lines(cloud_cfg, ds_file is not None)
    ]
    launch = [
        "torchrun",
        "--nnodes $SKYPILOT_NUM_NODES",
        "--nproc_per_node $SKYPILOT_NUM_GPUS_PER_NODE",
        "--node_rank $SKYPILOT_NODE_RANK",
        '--master_addr "$HEAD"',
        f"--master_port {RDZV_PORT}",
        f"-m {modules.get(config.module).python_module}",
        *flag_lines,
    ]
    run = "\n".join(
        [
            "set -euo pipefail",
            "# The first of the job's node IPs is the head; every node runs the same torchrun.",
            'HEAD="$(echo "$SKYPILOT_NODE_IPS" | head -n 1)"',
            'echo "[studio] node $SKYPILOT_NODE_RANK of $SKYPILOT_NUM_NODES, head $HEAD"',
            command.continued(launch),
        ]
    )
    setup = "\n".join(
        [
            "set -euo pipefail",
            "# The studio's pins; torch stays the image's (CUDA) build.",
            "pip install " + " ".join(f'"{p}"' for p in _pins()),
        ]
    )
    task = {
        "name": name,
        "num_nodes": nnodes,
        "resources": resources,
        "file_mounts": mounts,
        "setup": _Literal(setup + "\n"),
        "run": _Literal(run + "\n"),
    }
    header = (
        "# Generated by BGE Studio: a SkyPilot task (clouds and Kubernetes).\n"
        f"# Launch: sky launch -c {name} task.yaml   (needs a cloud account: sky check)\n"
        f"# Checkpoints and the final model land in the bucket {bucket} ({CHECKPOINTS}).\n"
    )
    return header + yaml.safe_dump(task, sort_keys=False, allow_unicode=True, width=1000)
