"""BGE Studio: configure, check, launch, watch and evaluate FlagEmbedding fine-tunes.

Importing it is cheap; heavy libraries (torch, transformers, FlagEmbedding) load when a function
needs them. The package is layered; a layer imports only from the layers above it:

1. Facts and contracts (no UI, no processes)
   ``modules/`` (FlagEmbedding's seven fine-tune modules: a registry, one file per module
   with everything the studio does differently for it), ``schema`` (every flag, from their
   dataclasses), ``labels`` and ``i18n`` (groups, basic set, words), ``problems`` (the one
   Problem type and "unknown name, did you mean"), ``runfolder`` (a run's files, states,
   phases and its locked status record).
2. The core: configs, checks and commands
   ``config``, ``module_switch``, ``form`` (config <-> widget values), ``command``,
   ``deepspeed_config``, ``script_import`` + ``shell_words``, ``preflight`` +
   ``preflight_modules``, ``hardware``, ``memory``, ``datafiles``, ``datawork/`` (check,
   stats, preview, token lengths, split, mining, teacher scores), ``evaluation/`` (data,
   encoders, exact search, pytrec_eval metrics, per-module modes, merge, export).
3. Runs: processes and files on disk
   ``runs`` (start, refresh, stop, resume, list), ``supervisor`` (owns one run), ``worker`` +
   ``train_entry`` (what torchrun starts), ``procs`` (containment), ``buildlocks``,
   ``reasons``, ``loss_health``, ``train_outcome`` (the end check), ``secrets``,
   ``checkpoints``, ``runlog``, ``watch``, ``charts``, ``post_train``, ``cluster/`` (node
   scripts, Slurm, SkyPilot).
4. Actions and words: what a user can do, and what the studio says
   ``actions`` (every button of the web UI and the notebook is one function here, over a
   ``Workspace``: check the form, save/load/import, start/stop/resume/open/compare runs, data
   work, evaluation, merging), ``views`` (the one text of a status line, a run summary,
   problems, a memory estimate: Markdown for the web, the same turned into HTML for the
   notebook).
5. Faces: lay out widgets, call an action, render what it returns
   ``cli`` (``python -m studio``), ``webui/`` (Gradio, ``launch.py``; ``webui/tabs/`` one
   module per tab, components by id in ``webui/registry``, the form in
   ``webui/form_state``), ``notebook/`` (ipywidgets ``Studio``).
"""

__version__ = "0.1.0"
