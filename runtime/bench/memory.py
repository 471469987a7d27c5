"""Peak resident memory of a block of code, per engine, without psutil.

On Linux, writing "5" to /proc/self/clear_refs resets the kernel's high-water mark of the
resident set (VmHWM), so the peak of one block is read exactly from /proc/self/status. Freed heap
memory is first returned to the OS (glibc malloc_trim) so that reuse of memory another engine
freed does not hide the block's own need. Elsewhere the process-lifetime peak (ru_maxrss) is
all there is; the method string says which one a figure came from.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import re
import resource
import sys
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
METHOD_HWM = "Linux VmHWM reset per engine: peak RSS during load + first run, minus RSS before"
METHOD_MAXRSS = "ru_maxrss: process-lifetime peak RSS (not separable per engine on this OS)"


def _status_kb(key: str) -> int | None:
    try:
        match = re.search(rf"^{key}:\s+(\d+)\s+kB", _STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _reset_hwm() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def _trim_heap() -> None:
    name = ctypes.util.find_library("c")
    if sys.platform.startswith("linux") and name:
        try:
            ctypes.CDLL(name).malloc_trim(0)
        except (OSError, AttributeError):
            pass


def _maxrss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 / (1024 if sys.platform == "darwin" else 1)  # macOS reports bytes


@dataclass
class MemoryUse:
    peak_rss_mb: float  # the process's resident set at its peak during the block
    added_mb: float | None  # that peak minus the resident set just before the block
    method: str


class PeakMemory:
    """``with PeakMemory() as m: ...`` then ``m.result`` is a :class:`MemoryUse`."""

    def __init__(self) -> None:
        self.result: MemoryUse | None = None
        self._before_kb: int | None = None
        self._exact = False

    def __enter__(self) -> PeakMemory:
        _trim_heap()
        self._before_kb = _status_kb("VmRSS")
        self._exact = self._before_kb is not None and _reset_hwm()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._exact:
            peak_kb = _status_kb("VmHWM") or 0
            self.result = MemoryUse(peak_kb / 1024, max(peak_kb - (self._before_kb or 0), 0) / 1024, METHOD_HWM)
        else:
            self.result = MemoryUse(_maxrss_mb(), None, METHOD_MAXRSS)
