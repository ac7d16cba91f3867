"""Layer 9, a face: ``python -m studio`` / ``bge-studio``.

``commands`` parses the command line and runs the top-level commands (check, train, runs,
stop, resume, estimate, export...); ``data``, ``evaluation``, ``merge`` and ``cluster`` own
their sub-commands. Only this package prints.
"""

from studio.cli.commands import main

__all__ = ["main"]
