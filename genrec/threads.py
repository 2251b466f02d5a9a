"""Intra-op threads that fit the cores other processes leave free.

Torch's thread pool spins and waits at every parallel op for its slowest thread. Beside a busy
process, a two-thread run on two cores keeps waiting for the thread that shares a core, and falls
below what one thread keeps alone (docs/performance.md). :func:`fit_threads` counts the cores the
other processes used over the last interval (``/proc/stat`` less this process's own time) and sets
torch's threads to the cores left free, never above the count the process started with, so a setting
of ``OMP_NUM_THREADS`` or ``torch.set_num_threads`` stays the ceiling. Where ``/proc`` is missing it
does nothing. ``GENREC_FIT_THREADS=0`` turns it off.
"""

from __future__ import annotations

import os
import time

_CEILING: int | None = None
_LAST: tuple[float, float, float] | None = None  # (wall time, busy cpu seconds of all cores, own cpu seconds)


def _busy_seconds() -> float | None:
    """CPU seconds all cores spent busy since boot (everything in /proc/stat but idle and iowait)."""
    try:
        with open("/proc/stat") as stat:
            fields = [float(x) for x in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    busy = sum(fields[:8]) - fields[3] - fields[4]  # user..steal, less idle and iowait
    return busy / ticks


def _own_seconds() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def others_busy_cores(interval: float = 0.25) -> float | None:
    """Cores other processes kept busy since the last call (or over ``interval`` seconds the first time)."""
    global _LAST
    busy = _busy_seconds()
    if busy is None:
        return None
    now, own = time.monotonic(), _own_seconds()
    if _LAST is None or now - _LAST[0] < 0.05:
        _LAST = (now, busy, own)
        time.sleep(interval)
        busy, now, own = _busy_seconds() or busy, time.monotonic(), _own_seconds()
    wall = now - _LAST[0]
    others = max(0.0, (busy - _LAST[1]) - (own - _LAST[2])) / wall
    _LAST = (now, busy, own)
    return others


def threads_for(cores: int, others: float, ceiling: int) -> int:
    """The threads to use on ``cores`` when other processes keep ``others`` of them busy."""
    return max(1, min(ceiling, int(cores - others + 0.5)))


def fit_threads() -> int:
    """Set torch's intra-op threads to the free cores (at least 1, at most the starting count); return it."""
    import torch

    global _CEILING
    if _CEILING is None:
        _CEILING = torch.get_num_threads()
    if os.environ.get("GENREC_FIT_THREADS", "1") == "0" or _CEILING <= 1:
        return torch.get_num_threads()
    others = others_busy_cores()
    if others is None:
        return torch.get_num_threads()
    threads = threads_for(os.cpu_count() or _CEILING, others, _CEILING)
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return threads
