"""Data: datasets, samplers and the DataLoader; real and generated data sets (classes and
numbers); CSV files; transforms."""

from ..files import DataError
from .collate import default_collate, default_convert
from .csv import CSVData, CSVError, guess_task, read_csv, read_features
from .dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
from .datasets import (
    MNIST_SUBSET,
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
    two_gaussians,
    xor,
)
from .download import cache_dir
from .idx import DataFileError, read_idx
from .images import ImageFolder, read_grey, read_image_folder
from .loader import DataLoader, WorkerInfo, get_worker_info
from .sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)
from .transforms import Standardizer, check_finite, one_hot, one_vs_rest, scale, train_val_split
