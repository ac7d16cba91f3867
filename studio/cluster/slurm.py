"""Slurm: submit a run as a batch job, watch it through Slurm and its run folder, stop it.

A Slurm run is a run folder like any other (config.yaml, command.sh, train.log, metrics.jsonl,
status.json, model/), plus ``job.sbatch`` and ``node.sh``. ``job.sbatch`` asks for N nodes with
one task each, takes the head from ``scontrol show hostnames $SLURM_JOB_NODELIST``, and
``srun``s ``node.sh`` (:mod:`studio.cluster.nodes`) once per node; Slurm writes all output to
the run's ``train.log`` and rank 0 appends the metrics to its ``metrics.jsonl``, so every face
watches a Slurm run exactly as a local one. After a successful training the job runs the same
post-training step as a local run.

status.json records ``launcher: slurm`` and ``job_id``; :mod:`studio.training.runs` hands such runs to
:func:`refresh`, :func:`stop` and :func:`resume` here. The state comes from Slurm while it
knows the job (``squeue`` for queued/running with Slurm's reason, ``scontrol show job`` for a
job that ended recently, ``sacct`` where accounting exists) and from the run's own files after
(the exit code the job script wrote, the stop marker). States: queued, running, succeeded,
failed, stopped.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from studio.cluster import nodes
from studio.core.config import StudioConfig
from studio.facts.hardware import Gpu, Hardware, detect
from studio.facts.problems import ERROR, Problem, errors
from studio.facts.runfolder import ACTIVE_STATES, RunFolder, RunState
from studio.training import runs

SBATCH_FILE = "job.sbatch"
NODE_FILE = "node.sh"
EXIT_FILE = "slurm_exit_code"
LAUNCHER = "slurm"
QUEUED, RUNNING = RunState.QUEUED.value, RunState.RUNNING.value
ACTIVE = tuple(s.value for s in ACTIVE_STATES)
STOP_WAIT_S = 90.0
SLURM_HEAD = "first-node-of-the-job"  # a placeholder; node.sh reads $STUDIO_HEAD
_TIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$|^\d+-\d+$|^(UNLIMITED|INFINITE)$", re.I)
_NAME = re.compile(r"^[A-Za-z0-9_.,\-]+$")

# Slurm's job states -> the run's state.
_STATES = {
    "PENDING": QUEUED,
    "REQUEUED": QUEUED,
    "REQUEUE_HOLD": QUEUED,
    "REQUEUE_FED": QUEUED,
    "CONFIGURING": QUEUED,
    "SUSPENDED": QUEUED,
    "RESV_DEL_HOLD": QUEUED,
    "RUNNING": RUNNING,
    "COMPLETING": RUNNING,
    "STAGE_OUT": RUNNING,
    "SIGNALING": RUNNING,
    "RESIZING": RUNNING,
    "COMPLETED": "succeeded",
    "CANCELLED": "stopped",
    "FAILED": "failed",
    "TIMEOUT": "failed",
    "NODE_FAIL": "failed",
    "OUT_OF_MEMORY": "failed",
    "BOOT_FAIL": "failed",
    "DEADLINE": "failed",
    "PREEMPTED": "failed",
    "SPECIAL_EXIT": "failed",
    "REVOKED": "failed",
}


class SlurmError(RuntimeError):
    """Slurm refused or could not be asked; the message is Slurm's own."""


@dataclass(frozen=True)
class SlurmSettings:
    """What the job asks Slurm for; None leaves it to the cluster's defaults."""

    nodes: int | None = None  # None: the config's torchrun.nnodes
    gpus_per_node: int = 0  # 0: no --gres (CPU jobs); else one process per GPU
    cpus_per_task: int | None = None
    time: str | None = None  # Slurm's formats: MM, HH:MM:SS, D-HH:MM...
    partition: str | None = None
    account: str | None = None
    socket_ifname: str | None = None

    def problems(self) -> list[Problem]:
        out = []

        def bad(field: str, message: str, fix: str) -> None:
            out.append(Problem(ERROR, message, fix, field=f"slurm.{field}", code="slurm_value"))

        for field in ("nodes", "cpus_per_task"):
            value = getattr(self, field)
            if value is not None and value < 1:
                bad(field, f"`{field}` must be at least 1, got {value}.", "Give 1 or more.")
        if self.gpus_per_node < 0:
            bad("gpus_per_node", "`gpus_per_node` cannot be negative.", "Give 0 for CPU jobs.")
        if self.time and not _TIME.match(self.time):
            bad(
                "time",
                f"time limit {self.time!r} is not in a Slurm format.",
                "Write minutes (90), HH:MM:SS (1:30:00) or D-HH:MM:SS (2-00:00:00).",
            )
        for field in ("partition", "account"):
            value = getattr(self, field)
            if value and not _NAME.match(value):
                bad(field, f"{field} {value!r} is not a Slurm name.", "Use letters and digits.")
        return out


def launch_for(config: StudioConfig, settings: SlurmSettings) -> nodes.NodeLaunch:
    """N nodes from the settings (else the config), one process per GPU (else the config's)."""
    nnodes = settings.nodes or config.torchrun.nnodes
    nproc = settings.gpus_per_node or config.torchrun.nproc_per_node
    return nodes.NodeLaunch(
        nnodes=nnodes,
        nproc_per_node=nproc,
        head=SLURM_HEAD,
        socket_ifname=settings.socket_ifname,
        rdzv_id="slurm-job",
    )


def job_hardware(settings: SlurmSettings) -> Hardware:
    """What pre-flight should assume: the compute node's GPUs, not the login node's.

    Their model is unknown before the job runs, so bf16 is taken as supported.
    """
    if settings.gpus_per_node:
        gpus = tuple(Gpu(i, "Slurm gres GPU", 0, 8.0) for i in range(settings.gpus_per_node))
        return Hardware(gpus, settings.cpus_per_task or detect().cpu_count)
    return Hardware((), settings.cpus_per_task or detect().cpu_count)


def _sbatch_path(path: Path) -> str:
    """A path for an #SBATCH option: Slurm's % patterns escaped, quoted when it has spaces."""
    text = str(path).replace("%", "%%")
    return f'"{text}"' if " " in text else text


def render_sbatch(
    run_dir: Path,
    settings: SlurmSettings,
    launch: nodes.NodeLaunch,
    job_name: str,
    cwd: Path,
) -> str:
    """The batch script: resources, output into the run folder, one ``node.sh`` per node."""
    run_dir = Path(run_dir).resolve()
    opts = [
        f"--job-name={re.sub(r'[^A-Za-z0-9_.-]+', '-', job_name)[:60]}",
        f"--nodes={launch.nnodes}",
        "--ntasks-per-node=1",
    ]
    if settings.gpus_per_node:
        opts.append(f"--gres=gpu:{settings.gpus_per_node}")
    if settings.cpus_per_task:
        opts.append(f"--cpus-per-task={settings.cpus_per_task}")
    if settings.time:
        opts.append(f"--time={settings.time}")
    if settings.partition:
        opts.append(f"--partition={settings.partition}")
    if settings.account:
        opts.append(f"--account={settings.account}")
    opts += [
        f"--output={_sbatch_path(run_dir / 'train.log')}",
        "--open-mode=append",
        f"--chdir={_sbatch_path(Path(cwd).resolve())}",
    ]
    run = shlex.quote(str(run_dir))
    lines = [
        "#!/usr/bin/env bash",
        f"# Generated by BGE Studio: {launch.nnodes} node(s) x {launch.nproc_per_node} "
        "process(es). Submit with: sbatch job.sbatch",
        *(f"#SBATCH {o}" for o in opts),
        "set -uo pipefail",
        f"RUN={run}",
        *nodes.environment_lines(launch, "$RUN/metrics.jsonl"),
        'export STUDIO_HEAD="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"',
        "# A port per job, so two jobs sharing a node do not meet at each other's rendezvous.",
        "export STUDIO_RDZV_PORT=$((20000 + SLURM_JOB_ID % 20000))",
        'rm -f "$RUN/' + EXIT_FILE + '"',
        'echo "[studio] Slurm job $SLURM_JOB_ID on $SLURM_JOB_NODELIST;'
        ' rendezvous $STUDIO_HEAD:$STUDIO_RDZV_PORT"',
        f'srun --nodes={launch.nnodes} --ntasks-per-node=1 --kill-on-bad-exit=1 bash "$RUN/{NODE_FILE}"',
        "code=$?",
        'if [ "$code" = 0 ]; then "$PYTHON" -m studio.training.post_train "$RUN" || true; fi',
        f'echo "$code" > "$RUN/{EXIT_FILE}"',
        'exit "$code"',
    ]
    return "\n".join(lines) + "\n"


def write_job_files(
    run_dir: Path,
    config: StudioConfig,
    settings: SlurmSettings,
    cwd: Path,
    versions: dict[str, str] | None = None,
) -> tuple[Path, Path]:
    """``job.sbatch`` and ``node.sh`` in ``run_dir`` (the config's paths already absolute)."""
    launch = launch_for(config, settings)
    node = run_dir / NODE_FILE
    node.write_text(nodes.render_node_script(config, launch, None, versions), encoding="utf-8")
    node.chmod(0o755)
    job = run_dir / SBATCH_FILE
    job.write_text(
        render_sbatch(run_dir, settings, launch, f"studio-{run_dir.name}", cwd), encoding="utf-8"
    )
    job.chmod(0o755)
    return job, node


# --------------------------------------------------------------------------- talking to Slurm


def _slurm(argv: list[str], timeout_s: float = 30.0) -> subprocess.CompletedProcess:
    exe = shutil.which(argv[0])
    if exe is None:
        raise SlurmError(
            f"`{argv[0]}` is not on PATH: this machine is not a Slurm submit host. Run the "
            "studio on the cluster's login node (or export the job: --target slurm)."
        )
    try:
        return subprocess.run(
            [exe, *argv[1:]], capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise SlurmError(f"`{' '.join(argv)}` did not answer in {timeout_s:.0f}s.") from None


def _slurm_message(proc: subprocess.CompletedProcess) -> str:
    return (proc.stderr or proc.stdout or "").strip() or f"exit code {proc.returncode}"


@dataclass(frozen=True)
class JobInfo:
    """What Slurm says about a job: its state (PENDING...), reason, exit code, source."""

    slurm_state: str
    reason: str | None = None
    exit_code: int | None = None
    source: str = "squeue"

    @property
    def state(self) -> str:
        return _STATES.get(self.slurm_state, "failed")


def _reason(text: str | None) -> str | None:
    return None if not text or text in ("None", "(null)") else text


def query_job(job_id: str) -> JobInfo | None:
    """The job as Slurm knows it now, or None once Slurm has forgotten it."""
    proc = _slurm(["squeue", "-h", "-j", str(job_id), "-o", "%T|%r"])
    if proc.returncode == 0 and proc.stdout.strip():
        state, _, reason = proc.stdout.strip().splitlines()[0].partition("|")
        return JobInfo(state.strip(), _reason(reason.strip()), None, "squeue")
    proc = _slurm(["scontrol", "show", "job", "-o", str(job_id)])
    if proc.returncode == 0 and "JobState=" in proc.stdout:
        fields = dict(re.findall(r"(\w+)=(\S*)", proc.stdout))
        state = fields.get("JobState", "").split()[0]
        return JobInfo(
            state, _reason(fields.get("Reason")), _exit(fields.get("ExitCode")), "scontrol"
        )
    if shutil.which("sacct"):
        proc = _slurm(["sacct", "-j", str(job_id), "-X", "-n", "-P", "-o", "State,ExitCode,Reason"])
        line = (
            proc.stdout.strip().splitlines()[0]
            if proc.returncode == 0 and proc.stdout.strip()
            else ""
        )
        if line:
            state, exit_text, reason = (line.split("|") + ["", ""])[:3]
            return JobInfo(state.split()[0], _reason(reason), _exit(exit_text), "sacct")
    return None


def _exit(text: str | None) -> int | None:
    """Slurm's ``CODE:SIGNAL`` as one number: the code, or minus the signal (as Popen does)."""
    if not text:
        return None
    code, _, sig = text.partition(":")
    if sig.isdigit() and int(sig):
        return -int(sig)
    return int(code) if code.isdigit() else None


# --------------------------------------------------------------------------- submit


def submit(
    config: StudioConfig,
    settings: SlurmSettings | None = None,
    runs_dir: str | Path = runs.DEFAULT_RUNS_DIR,
    base_dir: str | Path = ".",
    name: str | None = None,
) -> Path:
    """Check, prepare and ``sbatch`` a run; return its folder (status queued, with job_id).

    Raises :class:`studio.training.runs.PreflightFailed` (nothing created) on pre-flight errors, and
    :class:`SlurmError` with Slurm's own message when sbatch refuses the job; that run folder
    stays, marked failed with the message, so the Runs tab shows why.
    """
    settings = settings or SlurmSettings()
    launch = launch_for(config, settings)
    torchrun = replace(
        config.torchrun, nnodes=launch.nnodes, nproc_per_node=launch.nproc_per_node, node_rank=0
    )
    planned = replace(config, torchrun=torchrun)
    problems = settings.problems() + launch.problems()
    if not errors(problems):
        from studio.checks import preflight

        problems += preflight.run_checks(planned, base_dir, hardware=job_hardware(settings))
        runs_root = Path(runs_dir).resolve()
        if launch.nnodes > 1:
            from studio.checks.cluster import shared_path_problem

            problem = shared_path_problem(runs_root, "the runs folder", "runs_dir")
            if problem:
                problems.append(problem)
    if errors(problems):
        raise runs.PreflightFailed(errors(problems))
    run_dir = runs.prepare(planned, runs_dir, base_dir, name)
    cwd = Path(base_dir).resolve()
    write_job_files(run_dir, runs.load_run_config(run_dir), settings, cwd)
    now = time.time()
    RunFolder(run_dir).update_status(
        **{
            "launcher": LAUNCHER,
            "state": QUEUED,
            "job_id": None,
            "cwd": str(cwd),
            "started_at": now,
            "first_started_at": now,
            "attempt": 1,
            "exit_code": None,
            "error": None,
            "slurm": asdict(settings) | {"nodes": launch.nnodes},
        },
    )
    _sbatch(run_dir)
    return run_dir


def _sbatch(run_dir: Path) -> str:
    """Submit ``job.sbatch``; record the job id, or Slurm's refusal, in status.json."""
    try:
        proc = _slurm(["sbatch", "--parsable", str(run_dir / SBATCH_FILE)])
    except SlurmError as exc:
        RunFolder(run_dir).update_status(state="failed", error=str(exc), ended_at=time.time())
        raise
    if proc.returncode != 0:
        message = _slurm_message(proc)
        RunFolder(run_dir).update_status(state="failed", error=message, ended_at=time.time())
        raise SlurmError(message)
    job_id = proc.stdout.strip().split(";")[0]
    RunFolder(run_dir).update_status(job_id=job_id, state=QUEUED, slurm_state="PENDING")
    return job_id


# --------------------------------------------------------------------------- watch & stop


def refresh(run_dir: str | Path) -> dict:
    """status.json brought up to date from Slurm (or, once Slurm forgot the job, the files)."""
    run_dir = Path(run_dir)
    folder = RunFolder(run_dir)
    status = folder.read_status()
    if status.get("state") not in ACTIVE or not status.get("job_id"):
        return status
    try:
        info = query_job(status["job_id"])
    except SlurmError as exc:  # Slurm unreachable: keep the last known state, say why
        return {**status, "reason": str(exc)}
    if info is None:
        return folder.update_status(**_ended_from_files(run_dir, status))
    changes: dict = {"slurm_state": info.slurm_state, "reason": info.reason}
    if info.state in ACTIVE:
        changes["state"] = info.state
        if info.state == RUNNING and not status.get("running_since"):
            changes["running_since"] = time.time()
    else:
        changes.update(_ended(run_dir, info))
    if any(status.get(k) != v for k, v in changes.items()):
        status = folder.update_status(**changes)
    return status


def _ended(run_dir: Path, info: JobInfo) -> dict:
    from studio.training.runlog import exception_line

    exit_code = info.exit_code
    written = _written_exit(run_dir)
    if written is not None:
        exit_code = written
    state = info.state
    if info.slurm_state == "COMPLETED" and exit_code not in (0, None):
        state = "failed"
    if state == "stopped" and not RunFolder(run_dir).stop_marker.exists():
        reason = "cancelled outside the studio (scancel, or by an administrator)"
    else:
        reason = info.reason
    error = None
    if state == "failed":
        error = exception_line(RunFolder(run_dir).log) or (
            f"Slurm ended the job: {info.slurm_state}"
            + (f" ({info.reason})" if info.reason else "")
        )
        if info.slurm_state == "TIMEOUT":
            error = "Slurm stopped the job at its time limit (--time); " + error
    return {
        "state": state,
        "exit_code": exit_code,
        "ended_at": time.time(),
        "error": error,
        "reason": reason,
    }


def _written_exit(run_dir: Path) -> int | None:
    try:
        return int((run_dir / EXIT_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def _ended_from_files(run_dir: Path, status: dict) -> dict:
    from studio.training.runlog import exception_line

    code = _written_exit(run_dir)
    if code is not None:
        state = "succeeded" if code == 0 else "failed"
    elif RunFolder(run_dir).stop_marker.exists():
        state = "stopped"
    else:
        state = "failed"
    error = None
    if state == "failed":
        error = exception_line(RunFolder(run_dir).log) or (
            f"Slurm no longer knows job {status.get('job_id')} and it recorded no exit code "
            "(cancelled, out of time, or its node failed); see train.log"
        )
    return {"state": state, "exit_code": code, "ended_at": time.time(), "error": error}


def stop(run_dir: str | Path, wait_s: float = STOP_WAIT_S) -> dict:
    """``scancel`` the job and wait until Slurm lists it no more; return the final status."""
    run_dir = Path(run_dir)
    status = refresh(run_dir)
    job_id = status.get("job_id")
    if status.get("state") not in ACTIVE or not job_id:
        return status
    RunFolder(run_dir).stop_marker.touch()
    proc = _slurm(["scancel", str(job_id)])
    if proc.returncode != 0 and "Invalid job id" not in _slurm_message(proc):
        raise SlurmError(_slurm_message(proc))
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        listed = _slurm(["squeue", "-h", "-j", str(job_id), "-o", "%T"])
        if listed.returncode != 0 or not listed.stdout.strip():
            break
        time.sleep(0.5)
    return refresh(run_dir)


def resume(run_dir: str | Path) -> Path:
    """Submit a stopped or failed Slurm run again from its last checkpoint, same folder."""
    run_dir = Path(run_dir)
    status = refresh(run_dir)
    if status.get("state") in ACTIVE:
        raise RuntimeError(f"run {run_dir.name} is still {status['state']}; stop it first")
    checkpoint = runs.last_checkpoint(run_dir)
    if checkpoint is None:
        raise RuntimeError(
            f"run {run_dir.name} saved no checkpoint to resume from; lower `save_steps` next time"
        )
    config = runs.load_run_config(run_dir).with_args(resume_from_checkpoint=str(checkpoint))
    settings = SlurmSettings(**{k: v for k, v in (status.get("slurm") or {}).items()})
    write_job_files(run_dir, config, settings, Path(status.get("cwd") or "."))
    RunFolder(run_dir).stop_marker.unlink(missing_ok=True)
    RunFolder(run_dir).update_status(
        state=QUEUED,
        job_id=None,
        attempt=status.get("attempt", 1) + 1,
        started_at=time.time(),
        running_since=None,
        exit_code=None,
        error=None,
        reason=None,
        resumed_from=str(checkpoint),
    )
    _sbatch(run_dir)
    return run_dir


# studio.runs hands runs with `launcher: slurm` to refresh/stop/resume above.
runs.register_launcher(LAUNCHER, sys.modules[__name__])
