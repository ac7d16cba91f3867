"""Layer 5, checks before a run: pre-flight (every rule, the data checker's and each module's
own included), the memory estimate (which refuses what pre-flight refuses), the rules for several
nodes (``cluster``), and reading a user's shell script into a config (``script_import``).
"""
