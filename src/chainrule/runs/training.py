"""``chainrule train`` step by step: check everything, claim the run folder, train, write.

Everything that can be refused (settings, data, model size) is checked before the run folder is
touched. During training the folder always holds a usable run: ``config.json`` first, then at
every epoch end ``history.csv``, the checkpoint and the model (``model.safetensors`` +
``model.json``), each written atomically, so a kill at any moment leaves a folder that
``evaluate``, ``predict`` and ``info`` can read (once an epoch has ended) and ``--resume`` can
continue.

Resuming (``--resume``) continues exactly as the run was set up. The checkpoint records the
settings it was trained with; if ``config.json`` or the checkpoint disagree on anything but
``epochs``, ``data_dir`` and ``download``, the resume is refused with one line saying what
differs (start afresh with ``--overwrite``). ``epochs`` may grow unless a schedule was planned
over the old number. A run killed before its first checkpoint restarts from its first batch; a
folder with a model but no checkpoint (a finished run whose checkpoint was deleted) has nothing
to resume, and is refused rather than trained over.

Over several processes (``mpiexec -n N chainrule train``, see :mod:`chainrule.distributed`) every
process trains its share of each batch, and rank 0 alone touches the run folder: it claims it,
writes every file and shows the progress bar; the others only read (the data, and the checkpoint
of a resumed run, so the folder must be on a file system they all see). Validation and test
metrics are summed over all processes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path

from .. import distributed, io, models
from ..backend import ignore_float_errors, manual_seed, xp
from ..data.loader import DataLoader
from ..train import (
    Callback,
    CSVLogger,
    DivergenceError,
    ModelCheckpoint,
    TerminateOnNaN,
    evaluate,
    fit,
)
from ..train.comm import SingleProcess
from ..train.loop import ResumeError, check_state_fits
from . import folder, text
from .config import Config, RunError, command_line
from .recipe import (
    build_loss,
    build_model,
    build_optimizer,
    build_schedule,
    check_choices,
    default_lr,
    prepare,
)

# settings a resumed run may take from the command line or an edited config.json
MAY_CHANGE_ON_RESUME = ("epochs", "out", "data_dir", "download")
# settings the processes of one run may hold differently: where each finds the data (on its own
# disk; the data itself is compared) and where rank 0 writes (the others write nothing)
MAY_DIFFER_BETWEEN_PROCESSES = ("out", "data", "data_dir", "download")
EVAL_BATCH = 1000


class Interrupted(KeyboardInterrupt):
    """Training was interrupted (Ctrl-C); the message says how to continue."""


class SaveModel(Callback):
    """Write the model (weights + architecture + preprocessing) at every epoch end, so that an
    interrupted run can be evaluated and used. ``model``: the one to write, if not the one
    trained (e.g. the plain twin of a model trained with synchronised batch norm)."""

    def __init__(self, out: Path, metadata: dict, model=None):
        self.out, self.metadata, self.model = out, metadata, model

    def on_epoch_end(self, run, logs):
        folder.write_model(self.out, self.model or run.model, self.metadata)


def train(
    config: Config,
    resume: bool = False,
    progress: bool = True,
    overwrite: bool = False,
    comm=None,
):
    """Train as ``config`` says and write the run folder; returns the metrics written.

    With ``resume``, continue the run in ``config.out`` from its checkpoint (``config`` should be
    that run's saved config, see :func:`~.folder.saved_config`); with ``overwrite``, replace an
    earlier run in ``config.out`` (see :mod:`.folder` for what is deleted). ``comm``: the
    processes to train over (:func:`chainrule.distributed.init`; default this one alone).
    """
    comm = comm or SingleProcess()
    writes = comm.rank == 0  # rank 0 alone writes the run folder
    check_choices(config)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(config.out) if config.out else folder.unique_default_folder(stamp)
    config = dataclasses.replace(config, out=str(out))
    if config.data is not None:  # evaluate and --resume find the file from any folder
        config = dataclasses.replace(config, data=str(Path(config.data).resolve()))
    state = None
    if resume:
        if writes:
            folder.claim_for_resume(out)
        if (out / folder.CHECKPOINT).exists():
            state = io.load_checkpoint(out / folder.CHECKPOINT)
            check_resume(config, state, out)
        elif (out / folder.MODEL).exists():  # retraining from the start would replace it
            raise RunError(
                f"--resume: {out} holds a trained model but no {folder.CHECKPOINT} to continue "
                f"from: nothing to resume; train afresh over it with --overwrite, or choose "
                "another --out"
            )
    prepared = _prepare_one_after_another(config, comm)
    config = config.with_task_defaults(prepared.task)  # config.json says what was trained
    check_same_everywhere(config, prepared, comm)
    config = config.with_values_used(default_lr(config.optimizer), len(prepared.train[0]))
    manual_seed(config.seed)
    model = build_model(config, prepared.input_shape, prepared.outputs, config.batch_size)
    loss_fn = build_loss(config, prepared.outputs, prepared.task)
    optimizer = build_optimizer(config, model.parameters())
    loader = DataLoader(prepared.train, config.batch_size, shuffle=True, seed=config.seed)
    schedule = build_schedule(config, optimizer, len(loader))
    if state is not None:
        check_same_data(state, prepared.preprocessing.get("data_sha256"), config, out)
        try:
            check_state_fits(
                state, model, optimizer, config.epochs, len(loader), len(prepared.train[0])
            )
        except ResumeError as exc:
            raise RunError(
                f"--resume: {out / folder.CHECKPOINT}: {exc}; {_start_afresh(out)}"
            ) from None
    # what write_model would refuse at the first epoch's end, refused before anything is written
    folder.check_preprocessing(prepared.preprocessing, f"{out / folder.MODEL}")
    if not resume and writes:
        folder.claim(out, overwrite)
    if writes:
        folder.write_config(out, config)
    metadata = {"preprocessing": prepared.preprocessing, "dataset": config.dataset}
    # the checkpoint before the model: a kill between the two leaves a folder --resume continues
    # (a model without a checkpoint is a finished run's, which --resume leaves alone)
    writers = [
        CSVLogger(out / folder.HISTORY),
        ModelCheckpoint(
            out / folder.CHECKPOINT,
            every_n_batches=config.checkpoint_every,
            extra={
                "config": config.to_dict(),
                "data_sha256": prepared.preprocessing.get("data_sha256"),
            },
        ),
        SaveModel(out, metadata, model),
    ]
    callbacks = [TerminateOnNaN(), *schedule, *(writers if writes else [])]
    # synchronised batch norm trains a twin sharing the weights; the plain model is saved
    trained = distributed.convert_sync_batchnorm(model, comm) if config.sync_batchnorm else model
    started = time.perf_counter()
    try:
        # overflow on the way to a divergence is reported by TerminateOnNaN, not as warnings
        with ignore_float_errors():
            history = fit(
                trained,
                loss_fn,
                optimizer,
                loader,
                epochs=config.epochs,
                validation_data=prepared.val,
                callbacks=callbacks,
                progress=progress and writes,
                accuracy=prepared.task != "text",
                resume=state,
                target_std=prepared.target_std,
                comm=comm,
            )
    except ResumeError as exc:
        raise RunError(
            f"--resume: {out / folder.CHECKPOINT}: {exc}; {_start_afresh(out)}"
        ) from None
    except DivergenceError as exc:  # resuming would diverge again, from the last checkpoint
        smaller = dataclasses.replace(config, lr=config.lr / 10)
        raise type(exc)(
            f"{exc}: start afresh with a smaller one: {command_line(smaller)} --overwrite"
        ) from None
    except KeyboardInterrupt:
        if not writes:
            raise
        raise Interrupted(f"continue with: chainrule train --out {out} --resume") from None
    train_seconds = time.perf_counter() - started
    if writes:
        folder.write_model(out, model, metadata)
    test = evaluate(
        model,
        loss_fn,
        prepared.test,
        _evaluation_batch(model, prepared, config),
        accuracy=prepared.task != "text",
        target_std=prepared.target_std,
        comm=comm,
    )
    if prepared.task == "text":
        test["perplexity"] = text.perplexity(test["loss"])
    metrics = {f"test_{key}": value for key, value in test.items() if key != "loss"}
    metrics |= {
        "test_loss": test["loss"],
        "epochs": len(history),
        "train_seconds": train_seconds,
        "dataset": config.dataset,
        "task": prepared.task,
        "parameters": model.num_parameters(),
        "out": str(out),
    }
    risen = history.overfitting()
    if risen is not None:
        metrics["overfitting"] = risen
    watched = "val_r2" if prepared.task == "regression" else "val_accuracy"
    if history.rows and watched in history.rows[-1]:
        metrics[watched] = history.rows[-1][watched]
    if comm.world_size > 1:
        metrics["processes"] = comm.world_size
    if writes:
        folder.write_metrics(out, metrics)
    return metrics


def _evaluation_batch(model, prepared, config: Config) -> int:
    """Examples a step when testing: as many as fit in memory, up to :data:`EVAL_BATCH`; for a
    text model (whose layers do not lay out their memory) the training batch, which fitted."""
    if prepared.task == "text":
        return config.batch_size
    footprint = models.footprint_of_model(model, prepared.input_shape)
    return models.fitting_batch(footprint, EVAL_BATCH)


def _prepare_one_after_another(config: Config, comm):
    """The data, prepared by every process; with ``--download`` by rank 0 first (so that the files
    are fetched once), then by the others, which find them in place."""
    if not config.download:
        return prepare(config)
    first = prepare(config) if comm.rank == 0 else None
    comm.barrier()
    return first if comm.rank == 0 else prepare(config)


def check_same_everywhere(config: Config, prepared, comm) -> None:
    """Refuse, on every process, a run whose processes were started with different settings or
    read different data, before the first step: each would otherwise train its own model while
    the collectives pair up wrongly (a traceback, or a hang where their batch counts differ)."""
    if comm.world_size == 1:
        return
    mine = {k: v for k, v in config.to_dict().items() if k not in MAY_DIFFER_BETWEEN_PROCESSES}
    digest = hashlib.blake2b(digest_size=16)
    for array in (*prepared.train, *prepared.test):
        digest.update(xp.ascontiguousarray(array).data)
    mine["data"] = digest.hexdigest()
    differ, theirs = distributed.differences(comm, mine)
    if not differ:
        return
    said = []
    for key, ranks in differ.items():
        where = f"on rank(s) {', '.join(map(str, ranks))}"
        if key != "data":
            here = f", this rank {_show(mine[key])}" if comm.rank in ranks else ""
            said.append(f"{key} differs {where} (rank 0 has {_show(theirs[key])}{here})")
        elif len(differ) == 1:  # with other settings (a seed, a split) the data follows them
            said.append(f"the data differs {where} (other files under the same settings)")
    raise RunError(
        f"the {comm.world_size} processes were not started alike: {'; '.join(said)}; start "
        "every process with the same command, settings and data"
    )


def _start_afresh(out) -> str:
    return f"start afresh with: chainrule train --out {out} --overwrite"


def check_resume(config: Config, state: dict, out: Path) -> None:
    """Refuse to continue a checkpoint under settings other than its own (see the module
    docstring). Checkpoints written before settings were recorded get the structural checks of
    :func:`~chainrule.train.loop.check_state_fits` only."""
    extra = state.get("extra") if isinstance(state, dict) else None
    recorded = extra.get("config") if isinstance(extra, dict) else None
    if recorded is None:
        return
    if not isinstance(recorded, dict):
        raise RunError(f"{out / folder.CHECKPOINT}: its recorded settings are not an object")
    trained = Config.from_dict(
        recorded, source=f"{out / folder.CHECKPOINT} (recorded settings)", recorded=True
    )
    now, then = config.to_dict(), trained.to_dict()  # the optimizer's settings flat, by name
    differ = [
        n for n in {**now, **then} if n not in MAY_CHANGE_ON_RESUME and now.get(n) != then.get(n)
    ]
    if differ:
        said = ", ".join(f"{n} = {_show(now.get(n))}" for n in differ)
        was = ", ".join(f"{n} = {_show(then.get(n))}" for n in differ)
        raise RunError(
            f"--resume: {out / folder.CONFIG} says {said}, but the checkpoint was trained with "
            f"{was}; restore {folder.CONFIG} to continue, or {_start_afresh(out)}"
        )
    if config.epochs != trained.epochs and config.schedule != "none":
        raise RunError(
            f"--resume --epochs {config.epochs}: the {config.schedule} schedule was planned over "
            f"{trained.epochs} epochs and cannot change in a resumed run; {_start_afresh(out)}"
        )
    done = len(state.get("history") or [])
    if config.epochs < done:
        raise RunError(
            f"--resume --epochs {config.epochs}: the run has already trained {done} epochs"
        )


def check_same_data(state: dict, sha256: str | None, config: Config, out: Path) -> None:
    """Refuse to continue a run on a CSV file that changed since the run began."""
    extra = state.get("extra") if isinstance(state, dict) else None
    recorded = extra.get("data_sha256") if isinstance(extra, dict) else None
    if recorded is not None and recorded != sha256:
        raise RunError(
            f"--resume: {config.data} has changed since the run began (its SHA-256 is not the "
            f"one recorded in {out / folder.CHECKPOINT}); restore the file, or {_start_afresh(out)}"
        )


def _show(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else repr(value)
