"""``torch.utils.data`` for chainrule: ``from chainrule.utils.data import DataLoader, TensorDataset``.

The same objects as :mod:`chainrule.data` (one DataLoader in the library), under the names and
the module path PyTorch programs import. Shuffles and splits are reproducible from their seed or
generator but differ from PyTorch's (a different random generator draws them). The submodules
``dataloader``, ``dataset`` and ``sampler`` are there for programs that import from them, as
``from torch.utils.data.sampler import RandomSampler``.
"""

from ...data.collate import default_collate, default_convert
from ...data.dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
from ...data.loader import DataLoader, WorkerInfo, get_worker_info
from ...data.sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)
from . import dataloader, dataset, sampler

__all__ = [
    "BatchSampler",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "Subset",
    "SubsetRandomSampler",
    "TensorDataset",
    "WeightedRandomSampler",
    "WorkerInfo",
    "default_collate",
    "default_convert",
    "get_worker_info",
    "random_split",
]
