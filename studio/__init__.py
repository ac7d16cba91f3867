"""BGE Studio: configure, check, launch, watch and evaluate FlagEmbedding fine-tunes.

The package is a UI-free core (config, schema, command, preflight, runs, data, evaluation)
with thin faces over it: the CLI (`python -m studio`), the Gradio web UI (`launch.py`) and
the notebook widgets. Importing it is cheap; heavy libraries load when a function needs them.
"""

__version__ = "0.1.0"
