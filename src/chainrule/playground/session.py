"""A browser tab's session: a training thread of its own, driven by the page's requests and
watched through the messages it publishes.

The page's requests (a new setup, play, pause, step, reset, an uploaded file) run on the
server's request threads; they check what they can at once (so a bad setting is answered with
its message) and leave the rest to the session's thread as commands. That thread alone touches
the network: it trains an epoch at a time, at full speed while playing, and publishes a frame
at most every ``FRAME_INTERVAL`` seconds, so drawing never holds training back. Event streams
(:mod:`.server`) wait on :attr:`Session.changed` and send the newest frame.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
import traceback

from . import frames, image_run, inside_view
from .image_run import ImageTrainer
from .images import ImageSetup, Uploaded, build_images, read_uploaded_images
from .points import PlaygroundError, Upload, build_points, read_upload
from .settings import Setup
from .trainer import Trainer

FRAME_INTERVAL = 0.05  # at most 20 frames a second
MAX_EPOCHS = 10_000
ACTIONS = ("play", "pause", "step", "reset")


class Session:
    """One page's run. Request threads call :meth:`configure`, :meth:`upload_file`,
    :meth:`control`, :meth:`with_trainer` and :meth:`close`; the thread does the training.

    ``data_text`` / ``frame_text`` hold the newest messages as JSON, numbered by ``data_seq`` /
    ``frame_seq``; ``changed`` is notified whenever they or the commands change.
    """

    def __init__(self, session_id: str, from_page: bool = False, data_dir: str | None = None):
        self.id, self.from_page = session_id, from_page  # which share of the cap it counts in
        self.data_dir = data_dir  # where the image mode looks for MNIST (``--data-dir``)
        self.changed = threading.Condition()
        self.lock = threading.RLock()  # the trainer, between its thread and exports
        self.upload: Upload | None = None
        self.uploaded_images: Uploaded | None = None
        self.trainer: Trainer | ImageTrainer | None = None
        self._data = None  # the trainer's points or images, for a reset
        self.configured = False  # a setup was accepted
        self.playing = False
        self.closed = False
        self.message: str | None = None
        self.commands: list = []
        self.queued = self.applied = 0  # commands given to the thread, and carried out
        self.data_text, self.data_seq = None, 0
        self.frame_text, self.frame_seq = None, 0
        self.attached = 0  # event streams open and requests being answered: the page is there
        self.last_active = time.monotonic()
        self._last_frame = 0.0
        self.thread = threading.Thread(
            target=self._loop, name=f"playground-{session_id[:8]}", daemon=True
        )
        self.thread.start()

    # -- called from request threads -----------------------------------------------------------

    def configure(self, values: dict) -> Setup | ImageSetup:
        """Check a setup and its points (or images: ``"mode": "images"``) now (raising
        :class:`PlaygroundError`), then let the thread start a fresh run of it."""
        if isinstance(values, dict) and values.get("mode") == "images":
            setup = ImageSetup.from_dict(values, self.uploaded_images)
            points = build_images(setup, self.uploaded_images, self.data_dir)
        else:
            setup = Setup.from_dict(values, self.upload)
            points = build_points(setup, self.upload)
        with self.changed:
            self.configured = True  # before the thread has built the run: play may follow at once
        self._command(("setup", setup, points))
        return setup

    def upload_file(self, name: str, text: str) -> dict:
        """Keep an uploaded CSV file for the data set ``upload``; returns what it holds."""
        upload = read_upload(name, text)
        with self.changed:
            self.upload = upload
        return {
            "name": upload.name,
            "rows": len(upload.target),
            "features": upload.feature_names,
            "target": upload.target_name,
            "task": upload.task,
            "classes": [str(c) for c in upload.classes],
        }

    def upload_images(self, files) -> dict:
        """Keep the user's own classes of images for the image data set ``upload``."""
        uploaded = read_uploaded_images(files)
        with self.changed:
            self.uploaded_images = uploaded
        return uploaded.summary()

    def inside(self, values: dict) -> dict:
        """The inside view of the image network for a picture (:func:`.inside_view.inside`)."""
        picture, neuron, label = values.get("picture"), values.get("neuron"), values.get("backprop")

        def look(trainer):
            if not isinstance(trainer, ImageTrainer):
                raise PlaygroundError("the inside view is the image mode's: choose an image set")
            return inside_view.inside(trainer, picture, neuron, label)

        return self.with_trainer(look)

    def control(self, action: str) -> None:
        """Play, pause, one step (one epoch) or reset (fresh weights, same setup)."""
        if action not in ACTIONS:
            raise PlaygroundError(f"action must be one of {', '.join(ACTIONS)}, got {action!r:.40}")
        with self.changed:
            if not self.configured:
                raise PlaygroundError("no setup yet: the page sends one first")
            if action != "reset":  # a reset keeps playing, as a new setup does
                self.playing = action == "play"
            if action != "play":
                self.commands.append((action,))
                self.queued += 1
            self.changed.notify_all()

    def with_trainer(self, use, wait: float = 30.0):
        """``use(trainer)`` while the thread leaves the trainer alone (for an export), once the
        thread has carried out every request made before this one (a new setup, a step)."""
        with self.changed:
            asked = self.queued
            self.changed.wait_for(lambda: self.closed or self.applied >= asked, timeout=wait)
        with self.lock:
            if self.trainer is None:
                raise PlaygroundError("nothing to export yet: train at least one epoch first")
            return use(self.trainer)

    def close(self) -> None:
        """Stop the thread (it finishes the epoch it is in) and wake every stream."""
        with self.changed:
            self.closed = True
            self.playing = False
            self.changed.notify_all()

    def touch(self) -> None:
        self.last_active = time.monotonic()

    @contextlib.contextmanager
    def attach(self):
        """While the page holds a stream open or waits for an answer (a first setup can take
        seconds: a cold import), the session is not abandoned (:class:`.registry.Registry`)."""
        with self.changed:
            self.attached += 1
        try:
            yield self
        finally:
            with self.changed:
                self.attached -= 1
            self.touch()

    # -- the session's thread ------------------------------------------------------------------

    def _command(self, command: tuple) -> None:
        with self.changed:
            self.commands.append(command)
            self.queued += 1
            self.changed.notify_all()

    def _has_work(self) -> bool:
        ready = self.playing and self.trainer is not None
        return self.closed or bool(self.commands) or ready

    def _loop(self) -> None:
        while True:
            with self.changed:
                self.changed.wait_for(self._has_work, timeout=1.0)
                if self.closed:
                    return
                commands, self.commands = self.commands, []
            try:
                self._apply_all(commands)
                if self.playing and self.trainer is not None:
                    self._play_epoch()
            except Exception as exc:  # a bug: keep the server and the session alive, say so
                traceback.print_exc()
                self._stop(
                    f"internal error in chainrule ({type(exc).__name__}: {exc}); please report it"
                )

    def _apply_all(self, commands: list) -> None:
        """Carry out the commands in order; count them as done even if one fails, so that an
        export waiting for them (:meth:`with_trainer`) is not left waiting."""
        try:
            for command in commands:
                self._apply(command)
        finally:
            with self.changed:
                self.applied += len(commands)
                self.changed.notify_all()

    def _apply(self, command: tuple) -> None:
        kind = command[0]
        if kind == "setup":
            self._start(command[1], command[2])
        elif kind == "reset" and self.trainer is not None:
            self._start(self.trainer.setup, self._data)
        elif kind == "step" and self.trainer is not None:
            if self._trainable():
                self._train()
            self._publish_frame()
        elif kind == "pause":
            self._publish_frame()

    def _start(self, setup: Setup | ImageSetup, points) -> None:
        """A fresh run: new weights from the seed, epoch 0; the page gets data and a frame."""
        trainer = (ImageTrainer if isinstance(setup, ImageSetup) else Trainer)(setup, points)
        with self.lock:
            self.trainer, self._data = trainer, points
        self.message = None
        self._publish("data", _view(trainer).data_message(trainer))
        self._publish_frame()

    def _trainable(self) -> bool:
        problem = self.trainer.problem
        if problem is not None:
            self._stop(problem)
        return problem is None

    def _play_epoch(self) -> None:
        if not self._trainable():
            return
        self._train()
        if time.monotonic() - self._last_frame >= FRAME_INTERVAL or not self.playing:
            self._publish_frame()

    def _train(self) -> None:
        with self.lock:
            loss = self.trainer.train_epoch()
            epoch = self.trainer.epoch
        if not math.isfinite(loss):
            self._stop(
                f"epoch {epoch}: the loss is no longer a number (it overflowed): the steps "
                "overshoot; lower the learning rate and press reset"
            )
        elif epoch >= MAX_EPOCHS:
            self._stop(f"stopped at {MAX_EPOCHS:,} epochs, the playground's limit")

    def _stop(self, message: str) -> None:
        with self.changed:
            self.playing = False
        self.message = message
        self._publish_frame()

    def _publish_frame(self) -> None:
        if self.trainer is None:
            return
        with self.lock:
            frame = _view(self.trainer).frame_message(self.trainer, self.playing, self.message)
        self._last_frame = time.monotonic()
        self._publish("frame", frame)

    def _publish(self, kind: str, message: dict) -> None:
        try:
            text = json.dumps(message, allow_nan=False)
        except ValueError:  # a diverged network's NaN weights: null for the page
            text = json.dumps(_finite_only(message), allow_nan=False)
        with self.changed:
            if kind == "data":
                self.data_text, self.data_seq = text, self.data_seq + 1
            else:
                self.frame_text, self.frame_seq = text, self.frame_seq + 1
            self.changed.notify_all()


def _view(trainer):
    """What draws a run for the page: the points mode's frames, or the image mode's."""
    return image_run if isinstance(trainer, ImageTrainer) else frames


def _finite_only(value):
    """``value`` with every NaN or infinite number replaced by None (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_only(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_only(v) for v in value]
    return value
