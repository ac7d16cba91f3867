"""Which checkpoint a resume may use: the last one the Trainer finished writing.

A stop (or a crash) during a save leaves a `checkpoint-N` folder with some files and no
`trainer_state.json`, which the Trainer writes last. transformers' `get_last_checkpoint` takes
the highest N regardless, so "resume from the last checkpoint" would load a half-written one.
Both the run manager (`studio.training.runs`) and the training entry point (`--resume_from_checkpoint
True`) ask here.
"""

from __future__ import annotations

import re
from pathlib import Path

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
COMPLETE_MARKER = "trainer_state.json"


def last_complete_checkpoint(output_dir: str | Path) -> Path | None:
    """The highest `checkpoint-N` in `output_dir` that holds `trainer_state.json`, or None."""
    out = Path(output_dir)
    if not out.is_dir():
        return None
    found = [
        (int(m.group(1)), p)
        for p in out.iterdir()
        if p.is_dir() and (m := CHECKPOINT.match(p.name)) and (p / COMPLETE_MARKER).is_file()
    ]
    return max(found)[1] if found else None
