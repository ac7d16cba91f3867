"""Layer 2, configs and commands: a config read, resolved and written (``config``), the form's
values (``form``), switching modules (``module_switch``), the command and DeepSpeed JSON it
becomes (``command``, ``deepspeed_config``), and DeepSpeed's op-build locks (``buildlocks``).
"""
