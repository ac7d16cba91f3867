"""Layer 6, runs: processes and files on disk. Start, supervise, stop and resume a run
(``runs``, ``supervisor``, ``procs``), what torchrun starts (``worker``, ``train_entry``), loss
health and the end check, logs and charts, and what follows training (``post_train``,
``run_eval``).
"""
