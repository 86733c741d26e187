"""Run folders: what ``chainrule train`` does, step by step, and how its results are read back.

A run folder holds ``config.json`` (the settings), ``model.safetensors`` + ``model.json`` (the
trained network and how to feed it), ``history.csv``, ``metrics.json`` and
``checkpoint.safetensors`` (for ``--resume``).

* :mod:`.config`: the settings, each checked with a message naming it;
* :mod:`.recipe`: data, network, loss, optimizer and schedule built from the settings;
* :mod:`.tasks`: classification or regression, the regression sets and CSV files, targets;
* :mod:`.folder`: which files are chainrule's, claiming a folder, reading a run back;
* :mod:`.training`: ``train`` itself, and the rules for ``--resume``;
* :mod:`.inputs`: ``predict`` on image, ``.npy`` and CSV files;
* :mod:`.drawings`: your own pictures made to look like the training images;
* :mod:`.text`: text runs, a character model trained on a text file, and sampling from it.
"""

from .config import (
    OPTIMIZER_SETTINGS,
    OPTIMIZERS,
    TASKS,
    Config,
    RunError,
    learning_rate,
    learning_rates,
    non_negative_float,
    non_negative_int,
    optimizer_defaults,
    parse_sizes,
    positive_float,
    positive_int,
    target_choice,
    thread_count,
)
from .drawings import write_seen
from .folder import describe_task, evaluate_run, load_run, saved_config, task_of, test_data
from .inputs import class_names, predict_files, read_input
from .recipe import (
    DATASETS,
    IMAGE_SETS,
    LOSSES,
    POINT_SETS,
    REGRESSION_LOSSES,
    SCHEDULES,
    Prepared,
    build_loss,
    build_model,
    build_optimizer,
    build_schedule,
    check_choices,
    load_raw,
    load_table,
    prepare,
)
from .tasks import REGRESSION_SETS
from .text import CharModel, generate, load_text_model
from .training import train
