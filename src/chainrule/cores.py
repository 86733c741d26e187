"""How many threads chainrule computes with: by default, as many as the cores other programs
leave idle.

Two threads finish a matrix product sooner than one only while each has a core. The threads of
a product wait for each other at its end, so when another program holds a core (a browser, a
compile, a second training run) the product waits for whichever thread the operating system ran
last: with one busy program per core, a small MLP trained 5-20x slower on two threads than on one,
in NumPy and PyTorch alike (``python -m benchmarks.contention``; PERF-NOTES).

So by default (``set_num_threads("auto")``, the command line's ``--threads auto``) each training
step asks :func:`watch_cores` whether it is time to look again (every half second, a clock read
otherwise), and a look counts the cores the *others* kept busy since the last one:

    others = (CPU time of all programs - CPU time of this process) / wall time

from ``/proc/stat`` (Linux: time the machine's CPUs were busy, stolen by a hypervisor included)
and ``os.times()`` (this process's threads). Training then uses ``cores - others`` threads,
rounded down unless within a quarter of a core of the next, and at least one. It starts on one
thread, the safe choice, and takes the idle cores after its first look (50 ms in). Where there
is no ``/proc/stat``, the 1-minute load average stands in, less this process's threads.

``set_num_threads(n)`` fixes ``n`` threads and stops looking (so does ``--threads N``).
"""

from __future__ import annotations

import os
import threading
import time

FIRST_LOOK = 0.05  # seconds of training before the first look
LOOK_EVERY = 0.5  # seconds between looks afterwards
NEARLY_IDLE = 0.25  # a core counts as idle when others use less than this much of it
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system reports one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def busy_seconds() -> float | None:
    """CPU seconds the whole machine spent busy since boot (all CPUs), or None without
    ``/proc/stat``. Busy: user, nice, system, irq, softirq and steal (a hypervisor running
    someone else on our CPU); not idle or iowait."""
    try:
        with open("/proc/stat", "rb") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / _CLOCK_TICKS


def own_seconds() -> float:
    """CPU seconds this process (all its threads) has used."""
    times = os.times()
    return times.user + times.system


def threads_for(idle: float, most: int) -> int:
    """Threads for ``idle`` idle cores (a fraction): the whole idle cores, counting one that is
    within :data:`NEARLY_IDLE` of idle, between 1 and ``most``."""
    return max(1, min(most, int(idle + NEARLY_IDLE)))


class CoreWatch:
    """Follows how many cores the other programs keep busy and sets the thread count to the
    rest (see the module's docstring). ``tick()`` is called once per training step."""

    def __init__(self, cores: int | None = None):
        self.cores = cores or available_cores()
        self.threads = 1
        self.next_look = None  # perf_counter() time of the next look; None before the first
        self.last = (0.0, None, 0.0)  # (wall, busy, own) at the last look
        self.others = None  # cores the others kept busy at the last look
        self._lock = threading.Lock()

    def tick(self) -> None:
        now = time.perf_counter()
        if self.next_look is not None and now < self.next_look:
            return
        if not self._lock.acquire(blocking=False):  # another thread is looking right now
            return
        try:
            self._look(now)
        finally:
            self._lock.release()

    def _look(self, now: float) -> None:
        busy, own = busy_seconds(), own_seconds()
        if self.next_look is None:  # the first step: start safe, on one thread
            self.next_look, self.last = now + FIRST_LOOK, (now, busy, own)
            _apply(self.threads)
            return
        wall, busy_before, own_before = self.last
        if busy is not None and busy_before is not None:
            others = ((busy - busy_before) - (own - own_before)) / max(now - wall, 1e-9)
        else:  # no /proc/stat: the load average (this process's threads taken off)
            others = os.getloadavg()[0] - self.threads if hasattr(os, "getloadavg") else 0.0
        self.others = min(max(others, 0.0), float(self.cores))
        self.next_look, self.last = now + LOOK_EVERY, (now, busy, own)
        threads = threads_for(self.cores - self.others, self.cores)
        if threads != self.threads:
            self.threads = threads
            _apply(threads)


_watch: CoreWatch | None = CoreWatch()


def watch_cores() -> None:
    """Called once per training step (by every optimizer's ``step``): under ``"auto"``, follow
    the idle cores; otherwise nothing."""
    if _watch is not None:
        _watch.tick()


def set_num_threads(n: int | str) -> None:
    """Compute with ``n`` threads (matrix products and chainrule's own batch splitting), or with
    ``"auto"`` (the default): as many as the cores other programs leave idle, looked at while
    training runs."""
    global _watch
    if n == "auto":
        _watch = CoreWatch()
        return
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads expects a positive integer or 'auto', got {n!r}")
    _watch = None
    _apply(n)


def get_num_threads() -> int:
    """The threads matrix products may use now."""
    from .threads import blas_threads

    return blas_threads()


def watching() -> CoreWatch | None:
    """The watch behind ``"auto"`` (None when a fixed number was set), e.g. to read its
    ``others`` and ``threads``."""
    return _watch


def _apply(n: int) -> None:
    from .threads import set_blas_threads

    set_blas_threads(n)
