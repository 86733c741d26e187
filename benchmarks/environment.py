"""Every framework runs as its users have it: no environment variable a user would not have.

These machines set ``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` for older OpenBLAS builds; a
user's machine does not, and NumPy's OpenBLAS then picks its kernels by the CPU (SkylakeX on an
AVX-512 CPU, Haswell on AVX2) while PyTorch runs its own widest ones. :func:`as_users_have_it`
re-executes the benchmark without them, for every framework alike. The benchmarks set no
variable of their own (earlier versions capped PyTorch's vector instructions and tuned glibc's
allocator and OpenBLAS's idle threads for everyone, which moved the ratios by up to a third):
what chainrule needs, chainrule sets itself (in the library or its command line), and that is
what gets measured. :func:`describe` prints the CPU, its vector instructions and the kernels
each library then runs for every result, and names any variable of the libraries' families
that is still set.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

NOT_A_USERS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")  # set by these machines, not a user's
LIBRARY_PREFIXES = (
    "OPENBLAS_",
    "GOTO",
    "MKL_",
    "OMP_",
    "KMP_",
    "ATEN_",
    "ONEDNN_",
    "DNNL_",
    "MALLOC_",
)
UNSET_MARK = "CHAINRULE_BENCHMARK_UNSET"  # what the re-executed process was started without


def as_users_have_it(module: str) -> None:
    """Re-execute ``python -m module`` with this process's arguments, without the variables
    above, if any is set (they act when the libraries load, so they must be gone before)."""
    present = [name for name in NOT_A_USERS if name in os.environ]
    if not present:
        return
    env = {k: v for k, v in os.environ.items() if k not in NOT_A_USERS}
    env[UNSET_MARK] = " ".join(f"{k}={os.environ[k]}" for k in present)
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-m", module, *sys.argv[1:]], env)


def cpu() -> str:
    """The CPU's name and the vector instructions it has that matter here."""
    name, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    vectors = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")]
    have = [f for f in vectors if f in flags] or ["(flags not readable)"]
    return f"{name}, {os.cpu_count()} CPUs, vector instructions: {' '.join(have)}"


def describe() -> str:
    """One line: the kernels each library uses in this process (after they are imported), and
    which of the machine's variables were taken away."""
    from threadpoolctl import threadpool_info

    blas = sorted(
        {
            f"{i['internal_api']} {i.get('version')} {i.get('architecture')} kernels"
            for i in threadpool_info()
            if i["user_api"] == "blas"
        }
    )
    try:
        import torch

        config = torch.__config__.show()
        torch_blas = next(
            (p.split("=", 1)[1] for p in config.replace(",", " ").split() if "BLAS_INFO=" in p),
            "?",
        )
        theirs = (
            f"PyTorch {torch.__version__}: ATen {torch.backends.cpu.get_cpu_capability()}, "
            f"BLAS {torch_blas}, oneDNN {'on' if torch.backends.mkldnn.is_available() else 'off'}"
        )
    except ImportError:
        theirs = "PyTorch not installed"
    unset = os.environ.get(UNSET_MARK)
    still = sorted(k for k in os.environ if k.startswith(LIBRARY_PREFIXES))
    return (
        f"NumPy's BLAS: {', '.join(blas)}; {theirs}; "
        + (f"unset for all: {unset}" if unset else "nothing to unset")
        + (f"; still set: {', '.join(still)}" if still else "; no other library variable set")
    )
