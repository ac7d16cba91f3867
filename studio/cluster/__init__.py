"""Past one machine: per-node launch scripts, Slurm submit/watch/stop, SkyPilot task export.

Every script here is rendered from the same flag lines as ``command.sh``
(:func:`studio.core.command.flag_lines`), so a cluster runs the flags the form shows.

``nodes``     one script per node (torchrun, c10d rendezvous), each checking its versions
``slurm``     sbatch script, ``sbatch``/``squeue``/``scontrol``/``scancel`` for studio runs
``skypilot``  a SkyPilot task YAML for clouds and Kubernetes
``export``    the one function every face calls to write any of them into a folder
"""
