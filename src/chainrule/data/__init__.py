"""Data: loaders, real and generated data sets, transforms."""

from .datasets import (
    blobs,
    circles,
    load_digits,
    load_faces,
    load_fashion_mnist,
    load_mnist,
    moons,
    spirals,
    xor,
)
from .download import cache_dir
from .files import DataError
from .idx import DataFileError, read_idx
from .loader import DataLoader, Dataset, TensorDataset
from .transforms import Standardizer, check_finite, one_hot, one_vs_rest, scale, train_val_split
