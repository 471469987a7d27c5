"""``OUT/batch-report.json``: what became of every input of a batch run."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import writing
from ..files import atomic_write_bytes, json_bytes

FORMAT = "dyconvsr-toolchain/batch-report-v1"
REPORT = "batch-report.json"


@dataclass
class Row:
    input: str
    output: str | None
    status: str  # "ok" | "skipped" (complete and correct from an earlier run) | "failed" | "not run" (interrupted)
    seconds: float = 0.0
    worker: str | None = None
    error: str | None = None


@dataclass
class BatchReport:
    artifact: str
    engine: str = ""
    address: str = ""
    nodes: int = 0
    workers: list[str] = field(default_factory=list)
    restarted_workers: list[str] = field(default_factory=list)  # started again by Ray after one died
    seconds: float = 0.0
    rows: list[Row] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(row.status == status for row in self.rows)

    def write(self, path: Path) -> None:
        done = self.count("ok")
        data = {"format": FORMAT, **{k: v for k, v in asdict(self).items() if k != "rows"},
                "ok": done, "skipped": self.count("skipped"), "failed": self.count("failed"),
                "not_run": self.count("not run"),
                "inputs_per_second": round(done / self.seconds, 3) if self.seconds > 0 else None,
                "inputs": [asdict(row) for row in self.rows]}
        with writing(path, "batch report"):
            atomic_write_bytes(path, json_bytes(data))
