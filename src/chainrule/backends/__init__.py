"""``torch.backends`` for chainrule: ``import chainrule.backends.cudnn`` and the flags scripts set.

There is no cuDNN, CUDA or MPS here: each ``is_available()`` answers False, and the flags
(``cudnn.deterministic = True``, ``cudnn.benchmark = True``) are accepted and change nothing:
chainrule's CPU kernels are deterministic and need no autotuning.
"""

from . import cuda, cudnn, mps

__all__ = ["cuda", "cudnn", "mps"]
