"""Devices: chainrule computes on the CPU (NumPy), and says so when asked, as PyTorch does.

``cr.device("cpu")``, ``tensor.to("cpu")``, ``model.to(device)`` and ``device=`` on creation
functions all work; asking for a device chainrule has no backend for (``"cuda"``, ``"mps"``, ...)
raises a clear error instead of pretending. ``cr.cuda.is_available()`` is False and
``cr.accelerator.is_available()`` is False, so the usual tutorial line
``device = "cuda" if torch.cuda.is_available() else "cpu"`` picks the CPU.
"""

from __future__ import annotations

KNOWN_TYPES = ("cpu", "cuda", "mps", "xpu", "xla", "meta", "hip", "mtia", "hpu", "privateuseone")


class device:  # noqa: N801 - PyTorch's name
    """Where a tensor lives: ``device("cpu")``; ``device("cuda", 0)`` parses but is refused when used."""

    __slots__ = ("type", "index")

    def __init__(self, spec="cpu", index: int | None = None):
        if isinstance(spec, device):
            spec, index = spec.type, spec.index if index is None else index
        if isinstance(spec, int) and not isinstance(spec, bool):
            spec, index = "cuda", spec  # PyTorch reads a bare number as a CUDA ordinal
        if not isinstance(spec, str):
            raise TypeError(f"device expects a string such as 'cpu', got {spec!r}")
        kind, _, number = spec.partition(":")
        if kind not in KNOWN_TYPES:
            raise RuntimeError(f"unknown device type {kind!r} in {spec!r}; chainrule runs on 'cpu'")
        if number:
            if not number.isdigit() or index is not None:
                raise RuntimeError(f"invalid device string {spec!r}")
            index = int(number)
        self.type, self.index = kind, index

    def __eq__(self, other) -> bool:
        try:
            other = device(other)
        except (TypeError, RuntimeError):
            return NotImplemented
        return (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __repr__(self) -> str:
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{index})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"


CPU = device("cpu")


def check_device(spec) -> device:
    """The device ``spec`` names, which must be the CPU; anything else is a clear error."""
    if spec is None:
        return CPU
    parsed = device(spec)
    if parsed.type != "cpu":
        raise RuntimeError(
            f"device {str(parsed)!r} is not available: chainrule computes on the CPU with NumPy "
            "(cr.cuda.is_available() is False); use 'cpu'"
        )
    return parsed


def set_default_device(device) -> None:
    """Accepts the CPU (or None), where chainrule creates every tensor anyway; any other device
    is refused with :func:`check_device`'s error."""
    check_device(device)


def get_default_device() -> device:
    """The device new tensors are made on: always the CPU."""
    return CPU


class _Cuda:
    """``cr.cuda``: answers truthfully that there is no CUDA backend."""

    @staticmethod
    def is_available() -> bool:
        return False

    @staticmethod
    def device_count() -> int:
        return 0

    @staticmethod
    def manual_seed(seed: int) -> None:
        """Accepted and ignored, as PyTorch does without a GPU (seed with ``cr.manual_seed``)."""

    manual_seed_all = manual_seed

    @staticmethod
    def synchronize(device=None) -> None:
        """Nothing to wait for on the CPU."""


class _Accelerator:
    """``cr.accelerator``: there is none (PyTorch's answers on a CPU-only build)."""

    @staticmethod
    def is_available() -> bool:
        return False

    @staticmethod
    def current_accelerator(check_available: bool = False):
        return None

    @staticmethod
    def device_count() -> int:
        return 0


cuda = _Cuda()
accelerator = _Accelerator()
