"""Data: loaders, real and generated data sets (classes and numbers), CSV files, transforms."""

from .csv import CSVData, CSVError, guess_task, read_csv
from .datasets import (
    blobs,
    bumps,
    circles,
    line,
    load_california,
    load_diabetes,
    load_digits,
    load_faces,
    load_fashion_mnist,
    load_mnist,
    moons,
    plane,
    spirals,
    xor,
)
from .download import cache_dir
from .idx import DataFileError, read_idx
from .loader import DataLoader, Dataset, TensorDataset
from .transforms import Standardizer, one_hot, one_vs_rest, scale, train_val_split
