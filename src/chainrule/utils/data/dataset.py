"""``torch.utils.data.dataset``: datasets and ``random_split`` (see :mod:`chainrule.data`)."""

from ...data.dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split

__all__ = ["ConcatDataset", "Dataset", "Subset", "TensorDataset", "random_split"]
