"""Watching one run: its new metrics lines folded into a chart series, nothing re-read.

Each face keeps one watcher per viewer (a browser session, a notebook cell), never one global
watcher, so two viewers can follow different runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from studio.facts.runfolder import RunFolder
from studio.training.charts import Series
from studio.training.runlog import MetricsReader


@dataclass
class RunWatcher:
    run_dir: Path
    series: Series = field(default_factory=Series)
    reader: MetricsReader | None = None

    def __post_init__(self):
        self.run_dir = Path(self.run_dir)
        self.reader = MetricsReader(RunFolder(self.run_dir).metrics)

    def poll(self) -> int:
        """Fold in lines appended since the last poll; return how many steps were added."""
        return self.series.extend(self.reader.read_new())
