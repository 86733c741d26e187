"""A callback that stops training the way a dying process would, at a given batch."""

from chainrule.train import Callback


class Crash(Exception):
    pass


class CrashAt(Callback):
    """Raises :class:`Crash` at batch ``batch`` of epoch ``epoch`` (as the process dying there)."""

    def __init__(self, epoch, batch):
        self.epoch, self.batch = epoch, batch

    def on_batch_end(self, run, logs, batch_size):
        if (run.epoch, run.batch) == (self.epoch, self.batch):
            raise Crash
