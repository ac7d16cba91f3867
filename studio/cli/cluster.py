"""`python -m studio export` and `python -m studio submit --slurm`: thin CLI over the cluster core.

``studio.cli.commands`` calls :func:`register` and passes in its own config loader and problem printer
(they ride on the parsed arguments), so this module never imports the CLI above it.
"""

from __future__ import annotations

import argparse
import sys


def _count(least: int):
    """An argparse type: a whole number of at least ``least`` (0 nodes was silently 1)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < least:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a whole number of at least {least}; give {least} or more "
                "(or leave the option out for the config's value)"
            )
        return value

    return parse


def _port(text: str) -> int:
    value = _count(1)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port; give 1-65535 (default 29500)")
    return value


def _problems(problems, stream) -> None:
    for p in problems:
        print(str(p), file=stream)


def cmd_export(args) -> int:
    from studio.cluster import skypilot
    from studio.cluster.export import export

    cfg = args.load_config(args.config)
    result = export(
        cfg,
        args.target,
        args.out,
        args.base_dir,
        nnodes=args.nnodes,
        head=args.head,
        port=args.port,
        nproc_per_node=args.nproc_per_node,
        socket_ifname=args.socket_ifname,
        slurm_settings=_slurm_settings(args, args.nodes or args.nnodes),
        skypilot_settings=skypilot.SkyPilotSettings(
            nodes=args.nodes or args.nnodes,
            accelerators=args.accelerators,
            bucket=args.bucket,
            bucket_store=args.store,
            cloud=args.cloud,
        ),
        overwrite=args.force,
    )
    _problems(result.problems, sys.stderr)
    print(result.summary(), file=sys.stderr if not result.ok else sys.stdout)
    for path in result.files:
        print(path)
    return 0 if result.ok else 1


def cmd_submit(args) -> int:
    from studio.cluster import slurm
    from studio.training import runs

    if not args.slurm:
        print("error: say where to submit: --slurm (the only scheduler so far)", file=sys.stderr)
        return 2
    cfg = args.load_config(args.config)
    settings = _slurm_settings(args, args.nodes)
    try:
        run_dir = slurm.submit(cfg, settings, args.runs_dir, args.base_dir)
    except runs.PreflightFailed as exc:
        args.print_problems(exc.problems, sys.stderr)
        return 1
    except slurm.SlurmError as exc:
        print(f"error: Slurm refused the job: {exc}", file=sys.stderr)
        return 1
    status = runs.refresh(run_dir)
    print(f"submitted Slurm job {status.get('job_id')}: {run_dir}", file=sys.stderr)
    if args.wait:
        status = runs.wait(run_dir)
        print(f"{status.get('state')}: {run_dir}", file=sys.stderr)
        if status.get("error"):
            print(f"error: {status['error']}", file=sys.stderr)
    print(run_dir)
    if args.wait:
        return 0 if status.get("state") == "succeeded" else 1
    return 0


def _slurm_settings(args, nodes: int | None):
    """SlurmSettings from the options :func:`_slurm_options` adds (export and submit share them)."""
    from studio.cluster import slurm

    return slurm.SlurmSettings(
        nodes=nodes,
        gpus_per_node=args.gpus_per_node or 0,
        cpus_per_task=args.cpus_per_task,
        time=args.time,
        partition=args.partition,
        account=args.account,
        socket_ifname=args.socket_ifname,
    )


def _slurm_options(p) -> None:
    p.add_argument("--nodes", type=_count(1), help="nodes (default: the config's torchrun.nnodes)")
    p.add_argument(
        "--gpus-per-node", type=_count(0), help="GPUs per node: --gres=gpu:G, G processes"
    )
    p.add_argument("--cpus-per-task", type=_count(1), help="CPUs for each node's task")
    p.add_argument("--time", help="time limit in Slurm's format (1:00:00, 2-00:00:00)")
    p.add_argument("--partition", help="Slurm partition (default: the cluster's)")
    p.add_argument("--account", help="Slurm account to charge")


def register(sub, load_config, print_problems) -> None:
    """Add `export` and `submit`; ``load_config(path)`` exits with the config's problems,
    ``print_problems(problems, stream)`` prints them with their counts (the CLI's own)."""
    faces = {"load_config": load_config, "print_problems": print_problems}
    p = sub.add_parser(
        "export",
        help="write per-node scripts, a Slurm job or a SkyPilot task for a config into a folder",
    )
    p.add_argument("config")
    p.add_argument("--target", required=True, choices=["nodes", "slurm", "skypilot"])
    p.add_argument("--out", required=True, help="folder to write into")
    p.add_argument("--base-dir", default=".", help="folder relative paths are read from")
    p.add_argument("--nnodes", type=_count(1), help="nodes (default: the config's torchrun.nnodes)")
    p.add_argument("--head", help="nodes: the first node's address (rendezvous host)")
    p.add_argument("--port", type=_port, help="nodes: rendezvous port (default 29500)")
    p.add_argument("--nproc-per-node", type=_count(1), help="processes per node (default: config)")
    p.add_argument("--socket-ifname", help="network interface: NCCL/GLOO_SOCKET_IFNAME")
    _slurm_options(p)
    p.add_argument("--accelerators", help="skypilot: e.g. A100:8 (default A100:<processes>)")
    p.add_argument("--bucket", help="skypilot: checkpoint bucket name")
    p.add_argument("--store", help="skypilot: bucket store (s3, gcs, azure, r2...)")
    p.add_argument("--cloud", help="skypilot: cloud (aws, gcp, azure, kubernetes...)")
    p.add_argument("--force", action="store_true", help="replace files that exist")
    p.set_defaults(func=cmd_export, **faces)

    p = sub.add_parser("submit", help="submit a config as a batch job: --slurm")
    p.add_argument("config")
    p.add_argument("--slurm", action="store_true", help="submit to Slurm with sbatch")
    _slurm_options(p)
    p.add_argument("--socket-ifname", help="network interface: NCCL/GLOO_SOCKET_IFNAME")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--base-dir", default=".")
    p.add_argument("--wait", action="store_true", help="wait for the job to end")
    p.set_defaults(func=cmd_submit, **faces)
