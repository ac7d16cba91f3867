"""Export a config for a cluster: per-node scripts, a Slurm job, or a SkyPilot task, in a folder.

One function (:func:`export`) for every face: ``python -m studio export``, the web UI's Command
tab and the notebook's ``Studio.export``. It resolves the config's paths (absolute: the nodes
read them from shared storage), runs the pre-flight checks for the job as it will run (N nodes),
and writes nothing when they find an error or when a file it would write exists (unless
``overwrite``): what the user made is never replaced silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from studio.checks import preflight
from studio.cluster import nodes, skypilot, slurm
from studio.core import config as config_mod
from studio.core import deepspeed_config
from studio.core.config import StudioConfig
from studio.facts.hardware import Hardware
from studio.facts.problems import Problem, errors

TARGETS = ("nodes", "slurm", "skypilot")
SKYPILOT_FILE = "task.yaml"


@dataclass
class ExportResult:
    target: str
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not errors(self.problems)

    def summary(self) -> str:
        """What was written and how to use it, for every face to print."""
        if not self.ok:
            return "nothing written: " + "; ".join(str(p) for p in errors(self.problems))
        names = ", ".join(p.name for p in self.files)
        how = {
            "nodes": "run node-K.sh on node K (node-0.sh on the head), all at about the same time",
            "slurm": "submit with: sbatch job.sbatch",
            "skypilot": f"launch with: sky launch -c NAME {SKYPILOT_FILE}",
        }[self.target]
        return f"wrote {names} in {self.out_dir}; {how}"


def _planned(config: StudioConfig, nnodes: int, nproc: int) -> StudioConfig:
    torchrun = replace(config.torchrun, nnodes=nnodes, nproc_per_node=nproc, node_rank=0)
    return replace(config, torchrun=torchrun)


def export(
    config: StudioConfig,
    target: str,
    out_dir: str | Path,
    base_dir: str | Path = ".",
    *,
    nnodes: int | None = None,
    head: str | None = None,
    port: int | None = None,
    nproc_per_node: int | None = None,
    socket_ifname: str | None = None,
    slurm_settings: slurm.SlurmSettings | None = None,
    skypilot_settings: skypilot.SkyPilotSettings | None = None,
    overwrite: bool = False,
    hardware: Hardware | None = None,
    versions: dict[str, str] | None = None,
) -> ExportResult:
    """Write the ``target``'s files into ``out_dir``; return them with the pre-flight problems.

    nodes: ``node-0.sh`` ... ``node-{N-1}.sh`` (``nnodes``, ``head``, ``port``,
    ``nproc_per_node``, ``socket_ifname``; defaults from the config's torchrun section).
    slurm: ``job.sbatch`` + ``node.sh`` with its output in ``out_dir`` (``slurm_settings``).
    skypilot: ``task.yaml`` (``skypilot_settings``).
    A DeepSpeed config goes beside them as ds_config.json.
    """
    if target not in TARGETS:
        raise ValueError(f"unknown export target {target!r}; use one of {', '.join(TARGETS)}")
    out = Path(out_dir).resolve()
    result = ExportResult(target, out)
    try:
        resolved = config_mod.resolve_paths(config, base_dir)
    except config_mod.ConfigError as exc:
        result.problems = exc.problems
        return result
    if not resolved.args.get("output_dir") and target != "skypilot":
        resolved = resolved.with_args(output_dir=str(out / "model"))

    files: dict[str, str] = {}
    if target == "nodes":
        launch = nodes.NodeLaunch.from_config(
            resolved, nnodes, head, port, nproc_per_node, socket_ifname
        )
        planned = _planned(resolved, launch.nnodes, launch.nproc_per_node)
        result.problems = launch.problems()
        if hardware is None and launch.nproc_per_node > 1:  # the nodes' GPUs, not this machine's
            hardware = slurm.job_hardware(slurm.SlurmSettings(gpus_per_node=launch.nproc_per_node))
        if not errors(result.problems):
            files = nodes.node_scripts(planned, launch, versions)
    elif target == "slurm":
        settings = slurm_settings or slurm.SlurmSettings()
        if socket_ifname and not settings.socket_ifname:
            settings = replace(settings, socket_ifname=socket_ifname)
        launch = slurm.launch_for(resolved, settings)
        planned = _planned(resolved, launch.nnodes, launch.nproc_per_node)
        hardware = hardware or slurm.job_hardware(settings)
        result.problems = settings.problems() + launch.problems()
        if not errors(result.problems):
            files = {
                slurm.NODE_FILE: nodes.render_node_script(planned, launch, None, versions),
                slurm.SBATCH_FILE: slurm.render_sbatch(
                    out, settings, launch, f"studio-{out.name}", Path(base_dir).resolve()
                ),
            }
    else:
        settings = skypilot_settings or skypilot.SkyPilotSettings()
        planned = _planned(
            resolved, settings.nodes or resolved.torchrun.nnodes, resolved.torchrun.nproc_per_node
        )
        ds_file = out / deepspeed_config.DS_FILE_NAME if resolved.deepspeed else None
        files = {SKYPILOT_FILE: skypilot.render_task(planned, settings, ds_file, out.name)}
        gpus = skypilot.gpus_per_node(settings, resolved)
        hardware = hardware or slurm.job_hardware(slurm.SlurmSettings(gpus_per_node=gpus))

    if not errors(result.problems):
        found = preflight.run_checks(planned, ".", hardware=hardware)
        if target == "skypilot":  # file_mounts copy data and model to every node
            found = [p for p in found if p.code != "multinode_local_path"]
        result.problems += found
    if errors(result.problems):
        return result

    ds = deepspeed_config.resolve(planned.deepspeed)
    if ds is not None:
        files[deepspeed_config.DS_FILE_NAME] = deepspeed_config.dumps(ds)
    existing = [name for name in files if (out / name).exists()]
    if existing and not overwrite:
        result.problems.insert(
            0,
            Problem(
                "error",
                f"{', '.join(existing)} already exist(s) in {out}.",
                "Pick another folder, or pass overwrite (--force) to replace them.",
                file=str(out / existing[0]),
                code="export_exists",
            ),
        )
        return result
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        if name.endswith((".sh", ".sbatch")):
            path.chmod(0o755)
        result.files.append(path)
    return result
