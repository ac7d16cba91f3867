"""Per-node launch: one bash script per node, from one config, meeting through torchrun's c10d.

A multi-node job is N copies of the same launch that find each other at a rendezvous endpoint
(``--rdzv_backend c10d --rdzv_endpoint HEAD:PORT``): the first node hosts the rendezvous store,
the others join it, and torchrun hands out the ranks. Each script:

* checks, before anything else, that the node's FlagEmbedding, transformers and torch are the
  versions the studio exported with (a node with another transformers fails hours later, or
  trains differently without failing); ``STUDIO_SKIP_VERSION_CHECK=1`` skips it;
* exports ``NCCL_SOCKET_IFNAME``/``GLOO_SOCKET_IFNAME`` when an interface is given (nodes with
  several networks otherwise pick one the others cannot reach, and hang at the first collective);
* runs the studio's entry point (FlagEmbedding's trainer plus the metrics callback, the CPU
  world fix and working resume; see :mod:`studio.training.train_entry`) with the flags of
  :func:`studio.core.command.flag_lines`, the same lines as ``command.sh``. Rank 0 appends the
  metrics to ``STUDIO_METRICS_FILE`` (default: ``metrics.jsonl`` beside the script).

Paths in the scripts are absolute: every node must see them at the same place (shared storage;
:mod:`studio.checks.cluster` warns about node-local ones).
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path

from studio.core import command
from studio.core.config import StudioConfig, TorchrunSettings
from studio.facts import modules
from studio.facts.problems import ERROR, WARNING, Problem

PACKAGES = ("FlagEmbedding", "transformers", "torch")
SKIP_CHECK_ENV = "STUDIO_SKIP_VERSION_CHECK"
DEFAULT_RDZV_PORT = command.DEFAULT_MASTER_PORT
STUDIO_ROOT = Path(__file__).resolve().parents[2]
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.:\-]+$")


@dataclass(frozen=True)
class NodeLaunch:
    """How the nodes meet: how many, how many processes each, where the rendezvous is."""

    nnodes: int = 2
    nproc_per_node: int = 1
    head: str = "127.0.0.1"
    port: int = DEFAULT_RDZV_PORT
    socket_ifname: str | None = None
    rdzv_id: str = "bge-studio"
    python: str = sys.executable

    @classmethod
    def from_config(
        cls,
        config: StudioConfig,
        nnodes: int | None = None,
        head: str | None = None,
        port: int | None = None,
        nproc_per_node: int | None = None,
        socket_ifname: str | None = None,
        rdzv_id: str | None = None,
    ) -> NodeLaunch:
        """The config's torchrun section (nnodes, master_addr, master_port), overridden."""
        t = config.torchrun
        return cls(
            # 0 is a value (refused by problems()), not "unset": it never becomes the config's
            nnodes=t.nnodes if nnodes is None else nnodes,
            nproc_per_node=t.nproc_per_node if nproc_per_node is None else nproc_per_node,
            head=head or t.master_addr,
            port=port or t.master_port or DEFAULT_RDZV_PORT,
            socket_ifname=socket_ifname or None,
            rdzv_id=rdzv_id or "bge-studio",
        )

    def problems(self) -> list[Problem]:
        """Values that would make a broken script (or inject shell text) are refused here."""
        out = []
        if self.nnodes < 1 or self.nproc_per_node < 1:
            out.append(
                Problem(
                    ERROR,
                    f"{self.nnodes} node(s) x {self.nproc_per_node} process(es) is no job.",
                    "Give at least one node and one process per node.",
                    field="torchrun.nnodes",
                    code="nodes_count",
                )
            )
        if not _SAFE_NAME.match(self.head or ""):
            out.append(
                Problem(
                    ERROR,
                    f"head address {self.head!r} is not a host name or IP address.",
                    "Give the first node's address as the other nodes reach it, e.g. 10.0.0.1.",
                    field="torchrun.master_addr",
                    code="nodes_head",
                )
            )
        elif self.nnodes > 1 and (self.head.startswith("127.") or self.head == "localhost"):
            out.append(
                Problem(
                    WARNING,
                    f"head address {self.head} is this machine's loopback: nodes on other "
                    "machines cannot reach it (fine only when every node runs here).",
                    "Give the first node's address on the network the nodes share, e.g. "
                    "--head 10.0.0.1 (see `hostname -I` on that node).",
                    field="torchrun.master_addr",
                    code="nodes_loopback",
                )
            )
        if not 1 <= self.port <= 65535:
            out.append(
                Problem(
                    ERROR,
                    f"rendezvous port {self.port} is not a TCP port.",
                    "Give a free port from 1024 to 65535 (default 29500).",
                    field="torchrun.master_port",
                    code="nodes_port",
                )
            )
        for name, value in (("socket_ifname", self.socket_ifname), ("rdzv_id", self.rdzv_id)):
            if value and not _SAFE_NAME.match(value):
                out.append(
                    Problem(
                        ERROR,
                        f"{name} {value!r} holds characters a network interface name "
                        "or rendezvous id cannot have.",
                        "Use letters, digits, '.', '_', ':' and '-' (e.g. eth0 or ib0).",
                        field=name,
                        code="nodes_name",
                    )
                )
        return out


def with_launch(config: StudioConfig, launch: NodeLaunch) -> StudioConfig:
    """The config as the cluster will run it (its torchrun section says N nodes): pre-flight
    and the global batch arithmetic then count every process of every node."""
    torchrun = TorchrunSettings(
        nproc_per_node=launch.nproc_per_node,
        nnodes=launch.nnodes,
        node_rank=0,
        master_addr=launch.head,
        master_port=launch.port,
    )
    return replace(config, torchrun=torchrun)


def expected_versions() -> dict[str, str]:
    """The versions of this environment (the one the studio was tested with), public part only:
    a node's CUDA torch (``2.13.0+cu124``) matches a CPU login node's ``2.13.0+cpu``."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name).split("+")[0]
        except metadata.PackageNotFoundError:
            continue
    return found


_CHECK = """\
if [ "${{{skip}:-0}}" != 1 ]; then
"$PYTHON" - <<'STUDIO_VERSION_CHECK'
import socket, sys
from importlib.metadata import PackageNotFoundError, version
want = {want!r}
bad = []
for name, expected in want.items():
    try:
        found = version(name)
    except PackageNotFoundError:
        found = "missing"
    if found.split("+")[0] != expected:
        bad.append(f"{{name}} {{found}} (the studio expects {{expected}})")
if bad:
    pins = " ".join(f"{{n}}=={{v}}" for n, v in want.items())
    sys.exit(f"[studio] node {{socket.gethostname()}} has " + "; ".join(bad) + ". Fix: "
             f"{{sys.executable}} -m pip install {{pins}} (or set {skip}=1 to run anyway).")
print("[studio] versions ok on " + socket.gethostname() + ": "
      + ", ".join(f"{{n}} {{v}}" for n, v in want.items()), flush=True)
STUDIO_VERSION_CHECK
fi"""


def version_check(expected: dict[str, str] | None = None) -> str:
    """The bash lines that stop a node whose packages differ from ``expected``."""
    want = expected_versions() if expected is None else expected
    return _CHECK.format(want=dict(want), skip=SKIP_CHECK_ENV)


def environment_lines(launch: NodeLaunch, metrics_default: str) -> list[str]:
    """What every node exports before torchrun: interpreter, studio on the path, metrics file,
    and the socket interface when one is given."""
    lines = [
        f'PYTHON="${{PYTHON:-{launch.python}}}"',
        f'export PYTHONPATH={shlex.quote(str(STUDIO_ROOT))}"${{PYTHONPATH:+:$PYTHONPATH}}"',
        f'export STUDIO_METRICS_FILE="${{STUDIO_METRICS_FILE:-{metrics_default}}}"',
        "export PYTHONUNBUFFERED=1",
    ]
    if launch.socket_ifname:
        ifname = shlex.quote(launch.socket_ifname)
        lines.append(f"export NCCL_SOCKET_IFNAME={ifname} GLOO_SOCKET_IFNAME={ifname}")
    return lines


def torchrun_words(launch: NodeLaunch, endpoint: str, node_rank: int | None) -> list[str]:
    """torchrun's options for a c10d rendezvous; ``endpoint`` is already shell text.

    With a known node rank the head node hosts the rendezvous store (``is_host``) and the others
    only join, whatever order they start in; without one (Slurm runs one script on every node)
    torchrun decides by comparing the endpoint with the node's own addresses.
    """
    words = [
        '"$PYTHON" -m torch.distributed.run',
        f"--nnodes {launch.nnodes}",
        f"--nproc_per_node {launch.nproc_per_node}",
        "--rdzv_backend c10d",
        f"--rdzv_endpoint {endpoint}",
        f"--rdzv_id {shlex.quote(launch.rdzv_id)}",
    ]
    if node_rank is not None:
        words.append(f"--rdzv_conf is_host={1 if node_rank == 0 else 0}")
    return words


def launch_lines(config: StudioConfig, words: list[str]) -> str:
    """``exec`` torchrun over the studio's entry point with the config's flags (one per line):
    exec, so a stop (Ctrl-C, scancel) reaches torchrun and its workers directly."""
    lines = [
        "exec " + " ".join(words),
        f"-m {command.STUDIO_ENTRY_MODULE} {modules.ENTRY_FLAG} {config.module}",
        *command.flag_lines(config),
    ]
    return command.continued(lines)


def render_node_script(
    config: StudioConfig,
    launch: NodeLaunch,
    node_rank: int | None,
    versions: dict[str, str] | None = None,
) -> str:
    """The script for one node (``node_rank``), or for any node of a Slurm job (``None``:
    the head address and port come from ``STUDIO_HEAD``/``STUDIO_RDZV_PORT``)."""
    if node_rank is None:
        endpoint = f'"${{STUDIO_HEAD:?}}:${{STUDIO_RDZV_PORT:-{launch.port}}}"'
        who = [
            f"# Generated by BGE Studio: any node of a {launch.nnodes}-node Slurm job.",
            "# job.sbatch starts it on every node (srun); the nodes meet at the job's first "
            "node ($STUDIO_HEAD:$STUDIO_RDZV_PORT, torchrun c10d rendezvous).",
        ]
    else:
        endpoint = shlex.quote(f"{launch.head}:{launch.port}")
        who = [
            f"# Generated by BGE Studio: node {node_rank} of {launch.nnodes}.",
            f"# The nodes meet at {launch.head}:{launch.port} (torchrun c10d rendezvous); "
            "start node-0.sh on that host, the others anywhere that reaches it, in any order.",
        ]
    header = [
        "#!/usr/bin/env bash",
        *who,
        "# Paths are absolute: every node must see them at the same place (shared storage).",
        f"# {launch.nnodes} node(s) x {launch.nproc_per_node} process(es) = "
        f"world size {launch.nnodes * launch.nproc_per_node}.",
        "set -euo pipefail",
        command.HERE_LINE,
        *environment_lines(launch, "$HERE/metrics.jsonl"),
        version_check(versions),
        "",
    ]
    body = launch_lines(config, torchrun_words(launch, endpoint, node_rank))
    return "\n".join(header) + body + "\n"


def node_scripts(
    config: StudioConfig, launch: NodeLaunch, versions: dict[str, str] | None = None
) -> dict[str, str]:
    """``node-0.sh`` ... ``node-{N-1}.sh``: file name -> script text."""
    return {
        f"node-{rank}.sh": render_node_script(config, launch, rank, versions)
        for rank in range(launch.nnodes)
    }
