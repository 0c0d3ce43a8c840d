"""Interleaved timing, medians and ratios, and resident-memory (RSS) helpers."""
from __future__ import annotations

import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

GB = 1024 ** 3


# ------------------------------------------------------------------------------------------------ timing

def time_interleaved(cases: Dict[str, Callable[[], Any]], repeats: int, warmup: int = 1,
                     sync: Optional[Callable[[], None]] = None) -> Dict[str, List[float]]:
    """Run every case ``warmup`` times, then ``repeats`` rounds of all cases in turn (A, B, A, B, ...).

    Returns {name: [seconds per repeat]}. ``sync`` (e.g. ``torch.cuda.synchronize``) is called before each
    clock read.
    """
    sync = sync or (lambda: None)
    for _ in range(warmup):
        for fn in cases.values():
            fn()
    sync()
    times: Dict[str, List[float]] = {k: [] for k in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            t0 = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t0)
    return times


def median_or_none(xs: Sequence[float]) -> Optional[float]:
    return float(statistics.median(xs)) if xs else None


def ratio_or_none(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return None if a is None or b is None or b == 0 else float(a) / float(b)


# ------------------------------------------------------------------------------------------------ memory

def _proc_status_kb(key: str) -> Optional[int]:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_bytes() -> Optional[int]:
    """Peak resident set size of this process (VmHWM), bytes; ru_maxrss where /proc is missing."""
    kb = _proc_status_kb("VmHWM")
    if kb is None:
        try:
            import resource

            kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            if sys.platform == "darwin":
                return int(kb)
        except Exception:  # pragma: no cover
            return None
    return kb * 1024


def current_rss_bytes() -> Optional[int]:
    kb = _proc_status_kb("VmRSS")
    return None if kb is None else kb * 1024


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to /proc/self/clear_refs). Returns success."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False
