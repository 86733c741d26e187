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

``set_num_threads(n)`` fixes ``n`` threads instead (so does ``--threads N``).

**Two ways to use the threads.** With more than one, OpenBLAS can split each matrix product
over them (``"blas"``), or each product runs on one thread while chainrule's own pool splits
the batch of convolutions, pooling and large elementwise passes over them (``"pool"``, see
:mod:`.threads`). After a threaded product OpenBLAS's idle threads spin for about 0.1 s,
holding a core the pool's threads then want: on a quiet 2-core machine the MNIST example net
trained 1.50x faster and LeNet-5 1.37x faster the ``"pool"`` way, while a wide MLP, all products,
trained 1.39x faster the ``"blas"`` way (``python -m benchmarks.thread_arrangements``).
So after each change of the count, and again every minute, the watch times a few steps each
way (the median step) and keeps the faster.
"""

from __future__ import annotations

import os
import statistics
import threading
import time

FIRST_LOOK = 0.05  # seconds of training before the first look
LOOK_EVERY = 0.5  # seconds between looks afterwards
NEARLY_IDLE = 0.25  # a core counts as idle when others use less than this much of it
ARRANGEMENTS = ("blas", "pool")  # two ways to use the threads (see the module's docstring)
TRIAL_STEPS = 3  # steps timed, at least, for each arrangement
TRY_AGAIN_AFTER = 60.0  # seconds before the arrangements are tried again
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
    rest, or keeps ``fixed`` threads; and tries which of the two ways to use them makes the
    steps faster (see the module's docstring). ``tick()`` is called once per training step."""

    def __init__(
        self, cores: int | None = None, fixed: int | None = None, arrangement: str | None = None
    ):
        self.cores = cores or available_cores()
        self.fixed = fixed
        self.threads = fixed or 1
        self.arrangement = arrangement or "blas"  # or "pool": see ARRANGEMENTS
        self.tries = arrangement is None  # whether it tries both arrangements
        self.next_look = None  # perf_counter() time of the next look; None before the first
        self.last = (0.0, None, 0.0)  # (wall, busy, own) at the last look
        self.others = None  # cores the others kept busy at the last look
        self.previous_tick = None
        self.steps: list[float] = []  # seconds of each step since the last look
        self.trial: dict | None = None  # arrangement -> median step seconds, while trying
        self.next_trial = 0.0
        self._lock = threading.Lock()

    def tick(self) -> None:
        now = time.perf_counter()
        if self.previous_tick is not None:
            self.steps.append(now - self.previous_tick)
        self.previous_tick = now
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
        if self.next_look is None:  # the first step: start safe (on one thread, unless fixed)
            self.next_look, self.last = now + FIRST_LOOK, (now, busy, own)
            self._apply()
            return
        wall, busy_before, own_before = self.last
        if busy is not None and busy_before is not None:
            others = ((busy - busy_before) - (own - own_before)) / max(now - wall, 1e-9)
        else:  # no /proc/stat: the load average (this process's threads taken off)
            others = os.getloadavg()[0] - self.threads if hasattr(os, "getloadavg") else 0.0
        self.others = min(max(others, 0.0), float(self.cores))
        self.next_look, self.last = now + LOOK_EVERY, (now, busy, own)
        threads = self.fixed or threads_for(self.cores - self.others, self.cores)
        if threads != self.threads:  # a new count: its arrangement is tried afresh
            self.threads, self.trial, self.next_trial = threads, None, now
            self.arrangement = self.arrangement if not self.tries else ARRANGEMENTS[0]
            self._apply()
        self._try_arrangements(now)

    def _try_arrangements(self, now: float) -> None:
        """Time a few steps each way (median step), keep the faster, try again in a while."""
        if self.threads == 1 or not self.tries or (self.trial is None and now < self.next_trial):
            self.steps.clear()
            return
        if self.trial is None:  # start timing the first arrangement from here
            self.trial, self.arrangement = {}, ARRANGEMENTS[0]
        elif len(self.steps) >= TRIAL_STEPS:
            self.trial[self.arrangement] = statistics.median(self.steps)
            untried = [a for a in ARRANGEMENTS if a not in self.trial]
            if untried:
                self.arrangement = untried[0]
            else:
                self.arrangement = min(self.trial, key=self.trial.get)
                self.trial, self.next_trial = None, now + TRY_AGAIN_AFTER
        else:
            return  # this arrangement's window goes on
        self.steps.clear()
        self._apply()

    def _apply(self) -> None:
        pool_only = self.threads > 1 and self.arrangement == "pool"
        _apply(1 if pool_only else self.threads, self.threads)


_watch = CoreWatch()


def watch_cores() -> None:
    """Called once per training step (by every optimizer's ``step``)."""
    _watch.tick()


def set_num_threads(n: int | str, arrangement: str | None = None) -> None:
    """Compute with ``n`` threads (matrix products and chainrule's own batch splitting), or with
    ``"auto"`` (the default): as many as the cores other programs leave idle, looked at while
    training runs. ``arrangement`` (``"blas"`` or ``"pool"``, see the module's docstring) fixes
    how more than one thread is used, e.g. to compare them; by default both are tried."""
    global _watch
    if n != "auto" and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"set_num_threads expects a positive integer or 'auto', got {n!r}")
    if arrangement is not None and arrangement not in ARRANGEMENTS:
        raise ValueError(
            f"set_num_threads: arrangement {arrangement!r} is not one of {ARRANGEMENTS}"
        )
    _watch = CoreWatch(fixed=None if n == "auto" else n, arrangement=arrangement)
    if _watch.fixed:
        _watch._apply()


def get_num_threads() -> int:
    """The threads chainrule computes with now (in either arrangement); before the first
    training step under ``"auto"``, the threads NumPy's BLAS may use."""
    from .threads import blas_threads

    started = _watch.fixed is not None or _watch.next_look is not None
    return _watch.threads if started else blas_threads()


def watching() -> CoreWatch:
    """The watch (``fixed`` is None under ``"auto"``), e.g. to read its ``others``,
    ``threads`` and ``arrangement``."""
    return _watch


def _apply(blas: int, pool: int) -> None:
    from .threads import set_blas_threads

    set_blas_threads(blas, pool)
