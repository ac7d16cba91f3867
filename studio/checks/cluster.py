"""Pre-flight rules that only matter when a run spans several nodes.

On one machine every path is "shared". On several, each node reads the data, the model and
writes checkpoints on its own file system: an ``output_dir`` under ``/tmp`` leaves the model on
whichever node had rank 0, a data file under ``/tmp`` of the login node does not exist on the
others, and a hub id is downloaded (or, offline, looked up) by every node separately. These
rules run inside :func:`studio.checks.preflight.run_checks` whenever ``torchrun.nnodes > 1``.
"""

from __future__ import annotations

import os
from pathlib import Path

from studio.core.config import StudioConfig, looks_like_path
from studio.facts.hardware import Hardware
from studio.facts.problems import INFO, WARNING, Problem
from studio.facts.schema import Schema

# Folders that are per machine on every cluster we know of ($TMPDIR is added at check time).
NODE_LOCAL = ("/tmp", "/var/tmp", "/dev/shm", "/run", "/local", "/localscratch", "/lscratch")
SHARED_PATH_FLAGS = {
    "output_dir": "the output folder",
    "cache_dir": "the model cache (cache_dir)",
    "cache_path": "the data cache (cache_path)",
    "logging_dir": "the log folder",
}


def node_local_root(path: str | os.PathLike[str]) -> str | None:
    """The node-local folder ``path`` lies in, or None when it may be shared."""
    text = os.path.abspath(os.path.expanduser(str(path)))
    roots = list(NODE_LOCAL)
    tmpdir = os.environ.get("TMPDIR")
    if tmpdir and tmpdir not in ("/", ""):
        roots.append(os.path.abspath(tmpdir))
    for root in roots:
        if text == root or text.startswith(root.rstrip("/") + "/"):
            return root
    return None


def shared_path_problem(path: str | os.PathLike[str], what: str, field: str) -> Problem | None:
    """A warning when ``path`` is on storage the other nodes do not see."""
    root = node_local_root(path)
    if root is None:
        return None
    return Problem(
        WARNING,
        f"{what.capitalize()} `{path}` is under {root}, which is local to each node: the other nodes "
        "will not see what one node writes (or will not find what it reads).",
        "Use a folder on shared storage (NFS, Lustre, GPFS...) that every node mounts at the "
        "same path.",
        field=field,
        code="multinode_local_path",
    )


def _world(config: StudioConfig) -> int:
    return config.torchrun.nnodes * config.torchrun.nproc_per_node


def check_multinode(config: StudioConfig, hw: Hardware, schema: Schema) -> list[Problem]:
    """Shared storage, hub models and cross-device negatives, for a config spanning nodes."""
    if config.torchrun.nnodes <= 1:
        return []
    out: list[Problem] = []
    for name, what in SHARED_PATH_FLAGS.items():
        value = config.args.get(name)
        if value:
            problem = shared_path_problem(value, what, name)
            if problem:
                out.append(problem)
    for data in config.args.get("train_data") or []:
        problem = shared_path_problem(data, "training data", "train_data")
        if problem:
            out.append(problem)
    out += _model_problems(config)
    out += _cross_device_problems(config, schema)
    return out


def _model_problems(config: StudioConfig) -> list[Problem]:
    model = str(config.args.get("model_name_or_path") or "")
    if not model:
        return []
    if Path(model).is_dir() or looks_like_path(model):
        problem = shared_path_problem(model, "model folder", "model_name_or_path")
        return [problem] if problem else []
    cache = (
        config.args.get("cache_dir") or os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME")
    )
    where = f"the cache `{cache}`" if cache else "each node's Hugging Face cache (~/.cache)"
    return [
        Problem(
            WARNING,
            f"`{model}` is a hub id: every node loads it itself, from {where}; a node without "
            "it downloads it (or fails offline, as compute nodes often are).",
            "Download it once to shared storage (`hf download "
            f"{model} --local-dir /shared/models/...`) and give that folder, or set "
            "`cache_dir` to a shared folder that already holds it.",
            field="model_name_or_path",
            code="multinode_hub_model",
        )
    ]


def _cross_device_problems(config: StudioConfig, schema: Schema) -> list[Problem]:
    if not config.get("negatives_cross_device", schema):
        return []
    world = _world(config)
    batch = int(config.get("per_device_train_batch_size", schema) or 1)
    group = int(config.get("train_group_size", schema) or 1)
    passages = world * batch * group
    return [
        Problem(
            INFO if world <= 8 else WARNING,
            f"`negatives_cross_device` gathers every process's passages: each of the {world} "
            f"processes scores {batch} queries against {passages} passages "
            f"({world} x {batch} x {group}), {world}x the work and the score-matrix memory of "
            "one process, and the gathered embeddings grow the same way.",
            "Expect memory to grow with the number of nodes; lower "
            "`per_device_train_batch_size` or `train_group_size` if a larger job runs out.",
            field="negatives_cross_device",
            code="multinode_cross_device",
        )
    ]
