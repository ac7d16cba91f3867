"""BGE Studio: configure, check, launch, watch and evaluate FlagEmbedding fine-tunes.

Importing it is cheap; heavy libraries (torch, transformers, FlagEmbedding) load when a function
needs them. Each folder is a layer, and a layer imports only from the layers below it
(``lint-imports`` checks it, function-level imports included; ``tests/test_architecture.py``
finds no import cycle). From the top:

9. Faces, which lay out widgets, call an action and render what it returns (they do not know
   each other): ``cli/`` (``python -m studio``: ``commands`` + the ``data``, ``evaluation``,
   ``merge`` and ``cluster`` sub-commands), ``webui/`` (Gradio, ``launch.py``; one module per
   tab in ``webui/tabs/``), ``notebook/`` (the ipywidgets ``Studio``).
8. ``app/``: ``actions`` (every user action, one function over a ``Workspace``) and ``views``
   (the one text of a status line, a run summary, problems, an estimate).
7. ``cluster/``: node scripts, Slurm, SkyPilot.
6. ``training/``: runs as processes and files: ``runs`` (start, refresh, stop, resume, list),
   ``supervisor``, ``worker`` + ``train_entry`` (what torchrun starts), ``procs``, ``reasons``,
   ``loss_health``, ``train_outcome`` (the end check), ``runlog``, ``watch``, ``charts``,
   ``checkpoints``, ``post_train`` and ``run_eval`` (what follows training).
5. ``checks/``: before a run: ``preflight`` (+ ``preflight_modules``), ``memory`` (the
   estimate refuses what pre-flight refuses), ``script_import`` + ``shell_words``, and the
   rules that only matter on several nodes (``checks.cluster``).
4. ``datawork/``: the data workbench (check, stats, preview, lengths, split, convert, mine,
   score, pairs from documents, difficulty).
3. ``evaluation/``: held-out data, encoders, exact search, metrics, per-module modes, merge,
   export.
2. ``core/``: ``config``, ``form`` (config <-> widget values), ``module_switch``, ``command``,
   ``deepspeed_config``, ``buildlocks``.
1. ``facts/``: ``modules/`` (FlagEmbedding's fine-tune modules: a registry, one file per
   module with everything the studio does differently for it), ``schema`` (every flag, from
   their dataclasses), ``labels`` and ``i18n``, ``problems`` (the one Problem type),
   ``runfolder`` + ``statusfile`` (a run's files, states and status record), ``datafiles``,
   ``hardware``, ``secrets``.

When a lower layer needs something a higher one knows, it is passed in (``runs`` learns Slurm's
launcher through ``register_launcher``; ``cluster.cli.register`` is given the CLI's config
loader).
"""

__version__ = "0.1.0"
