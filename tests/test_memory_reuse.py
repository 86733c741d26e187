"""``import chainrule`` asks glibc to keep freed memory (``backend.keep_freed_memory``): a
training step's big temporaries, freed at its end, stay with the process for the next step
instead of going back to the kernel (and being faulted in, zeroed, again)."""

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="a setting of glibc's allocator, on Linux",
)

ONE_STEP = """
import os
import numpy as np
{setup}
def resident_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
before = resident_mib()
temporary = np.ones(5_000_000, np.float32)  # 19 MiB: below the 32 MiB from which glibc maps anew
del temporary
print(resident_mib() - before)
"""


def mib_kept_after_a_step(setup: str) -> float:
    script = ONE_STEP.format(setup=setup)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return float(done.stdout.split()[-1])


def test_importing_chainrule_keeps_a_freed_temporary_for_the_next_step():
    assert mib_kept_after_a_step("import chainrule") > 15
    assert mib_kept_after_a_step("") < 5  # glibc's default: handed back when freed


def test_keep_freed_memory_says_whether_it_could():
    from chainrule.backend import keep_freed_memory

    assert keep_freed_memory() is True
