"""Switching a config to another fine-tune module: which values still apply, which are dropped.

The web UI's module menu, the notebook's ``Studio.set_module`` and anything else that changes
``module:`` call :func:`switch_module`, so every face keeps and drops the same values and says
so in the same words. A value is kept when the new module's dataclasses have the flag and the
value passes its type check (and, where FlagEmbedding gives a flag another meaning in another
module, the new module's accepted values); everything else is dropped and named. The studio's
own sections (torchrun, DeepSpeed, ``studio:``) are not FlagEmbedding's flags and always stay.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from studio.core.config import StudioConfig, coerce
from studio.facts import modules
from studio.facts.schema import load_schema

# Flags that exist in several modules with different meanings: the values one module accepts
# (each module's ``values`` in studio.modules).
MODULE_VALUES: dict[tuple[str, str], tuple[str, ...]] = {
    (name, flag): allowed
    for name, m in modules.MODULES.items()
    for flag, allowed in m.values.items()
}


@dataclass(frozen=True)
class ModuleSwitch:
    """The outcome of a switch: the new config and what happened to each old value."""

    config: StudioConfig
    old_module: str
    kept: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)  # flag -> why

    def message(self) -> str:
        """One sentence a face shows after the switch."""
        head = f"Module {self.config.module}"
        if self.old_module == self.config.module:
            return f"{head}: unchanged."
        kept = f"kept {len(self.kept)} value(s)"
        if not self.dropped:
            return f"{head}: {kept}; nothing dropped."
        dropped = "; ".join(f"`{k}` ({why})" for k, why in self.dropped.items())
        return f"{head}: {kept}; dropped {len(self.dropped)}: {dropped}."


def value_problem(module: str, name: str, value) -> str | None:
    """Why ``value`` cannot stay as ``name`` in ``module``, or None when it can."""
    schema = load_schema(module)
    if name not in schema:
        return f"{modules.get(module).python_module} has no such argument"
    try:
        coerce(schema[name], value)
    except ValueError as exc:
        return str(exc)
    allowed = MODULE_VALUES.get((module, name))
    if allowed and value not in allowed:
        return f"here it is one of {', '.join(allowed)}"
    return None


def switch_module(config: StudioConfig, module: str) -> ModuleSwitch:
    """The config under ``module``: the values that still apply kept, the others dropped.

    Raises ValueError for an unknown module (the message lists the known ones).
    """
    new = modules.get(module).name
    kept: list[str] = []
    dropped: dict[str, str] = {}
    args = {}
    for name, value in config.args.items():
        why = value_problem(new, name, value)
        if why is None:
            args[name] = value
            kept.append(name)
        else:
            dropped[name] = why
    switched = replace(config, args=args, module=new)
    return ModuleSwitch(switched, config.module, kept, dropped)
