"""``torch.nn.modules.sparse``: Embedding (the classes of :mod:`chainrule.nn`)."""

from ..embedding import Embedding

__all__ = ["Embedding"]
