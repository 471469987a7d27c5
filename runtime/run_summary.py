"""runtime.infer's --json summary: what ran and, per input, what became of it (a record scripts can read
instead of parsing stderr)."""
from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import writing
from .files import atomic_write_bytes, json_bytes

FORMAT = "dyconvsr-toolchain/infer-summary-v1"


@dataclass
class InputResult:
    input: str
    output: str | None
    status: str  # "ok" | "failed"
    seconds: float
    error: str | None = None


@dataclass
class RunSummary:
    artifact: str
    engine: str = ""  # where it ran, as the runner says (empty when no engine opened)
    inputs: list[InputResult] = field(default_factory=list)

    def add(self, source: str, output: str | None, status: str, seconds: float, error: str | None = None) -> None:
        self.inputs.append(InputResult(source, output, status, round(seconds, 4), error))

    def write(self, path: Path) -> None:
        """As JSON to ``path`` (atomically), or to stdout for ``-``."""
        data = json_bytes({"format": FORMAT, **asdict(self),
                           "ok": sum(r.status == "ok" for r in self.inputs),
                           "failed": sum(r.status != "ok" for r in self.inputs)})
        if str(path) == "-":
            sys.stdout.write(data.decode())
            sys.stdout.flush()
            return
        with writing(path, "JSON summary"):
            atomic_write_bytes(path, data)
