"""Process settings the benchmark applies to every framework alike (it re-executes itself with
them, as they must be in place before the libraries load).

**The same vector instruction set for NumPy's BLAS and for PyTorch.**

OpenBLAS picks its kernels by CPU, unless ``OPENBLAS_CORETYPE`` pins one (machines of this
project's class set ``Haswell``: AVX2, as on AMD Zen 3). PyTorch picks its own (MKL, oneDNN and
ATen's vectorised loops) and would still use AVX-512 where the CPU has it, twice the vector width
of the pinned BLAS: a comparison of libraries would then be one of instruction sets. So when
OpenBLAS is pinned to an AVX2 kernel, PyTorch is limited to AVX2 as well, through its own
environment variables.

**Idle BLAS threads soon sleep.** After each multi-threaded product, OpenBLAS keeps its worker
threads spinning for 2^28 cycles (about 0.1 s) waiting for more work. A training step that calls a
threaded product (a Linear layer) and then runs chainrule's own worker threads (convolutions,
pooling) then has three busy threads on two cores: on a quiet machine the MNIST example net took
58 ms per step with two threads against 56 ms with one. ``OPENBLAS_THREAD_TIMEOUT=20`` (2^20
cycles, about 0.3 ms) keeps the threads spinning between the back-to-back products of an MLP
(MLP speed unchanged within 3%) and lets them sleep before a convolution's threads start: 37 ms.
(A timeout of 4 cost the MLPs 8-21%.) It touches OpenBLAS only (NumPy, scikit-learn), not
PyTorch's MKL/OpenMP.
"""

from __future__ import annotations

import os

AVX2_CORETYPES = {"haswell", "zen"}
TORCH_AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


IDLE_BLAS = {"OPENBLAS_THREAD_TIMEOUT": "20"}


def matched_env() -> dict:
    """Environment variables that give PyTorch the instruction set OpenBLAS was pinned to."""
    if os.environ.get("OPENBLAS_CORETYPE", "").lower() in AVX2_CORETYPES:
        return dict(TORCH_AVX2)
    return {}


def describe() -> str:
    """One line: the kernels each library uses in this process (after both are imported)."""
    from threadpoolctl import threadpool_info

    blas = sorted(
        {
            f"{i['internal_api']} {i.get('architecture')}"
            for i in threadpool_info()
            if i["user_api"] == "blas"
        }
    )
    try:
        import torch

        torch_isa = torch.backends.cpu.get_cpu_capability()
        onednn = os.environ.get("ONEDNN_MAX_CPU_ISA", "native")
        theirs = f"PyTorch {torch_isa} (oneDNN max ISA: {onednn})"
    except ImportError:
        theirs = "PyTorch not installed"
    pinned = os.environ.get("OPENBLAS_CORETYPE")
    ours = f"NumPy's BLAS {', '.join(blas)}" + (f" (OPENBLAS_CORETYPE={pinned})" if pinned else "")
    return f"{ours}; {theirs}"
