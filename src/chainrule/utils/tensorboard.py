"""``SummaryWriter``, as ``torch.utils.tensorboard``'s: scalars, histograms, images and text
written as TensorBoard event files, for ``tensorboard --logdir runs`` to show.

The files are written by the ``tensorboard`` package itself (its event file writer and its
protocol buffers), so TensorBoard reads them as its own; ``pip install 'chainrule[tensorboard]'``
brings it. Values may be numbers, NumPy arrays or chainrule tensors.

Example:
    >>> from chainrule.utils.tensorboard import SummaryWriter
    >>> writer = SummaryWriter()                 # runs/<date>_<host>
    >>> for step in range(100):
    ...     writer.add_scalar("loss", 1 / (step + 1), step)
    >>> writer.close()
"""

from __future__ import annotations

import io
import socket
import time
from datetime import datetime
from pathlib import Path

from ..backend import xp
from ..tensor import as_array


def _tensorboard():
    """The tensorboard package's writer and protocol buffers, or one line saying how to get it."""
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
    except ImportError:
        raise ImportError(
            "SummaryWriter writes through the tensorboard package: pip install "
            "'chainrule[tensorboard]'"
        ) from None
    return EventFileWriter, event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2


class SummaryWriter:
    """Writes events to ``log_dir`` (default ``runs/<date>_<host><comment>``), as PyTorch's.

    Args:
        log_dir: the folder of this run's event files.
        comment: added to the default folder name.
        max_queue: events kept before they are written.
        flush_secs: at least how often they are written.
        filename_suffix: added to the event file's name.
    """

    def __init__(
        self,
        log_dir=None,
        comment: str = "",
        purge_step=None,  # PyTorch's; accepted, nothing is purged
        max_queue: int = 10,
        flush_secs: int = 120,
        filename_suffix: str = "",
    ):
        self._tb = _tensorboard()
        if log_dir is None:
            stamp = datetime.now().strftime("%b%d_%H-%M-%S")
            log_dir = Path("runs") / f"{stamp}_{socket.gethostname()}{comment}"
        self.log_dir = str(log_dir)
        self._options = (max_queue, flush_secs, filename_suffix)
        writer_class = self._tb[0]
        self._writer = writer_class(self.log_dir, max_queue, flush_secs, filename_suffix)
        self._children: dict[str, SummaryWriter] = {}

    def get_logdir(self) -> str:
        return self.log_dir

    # -- what can be written ---------------------------------------------------------------------
    def add_scalar(self, tag: str, scalar_value, global_step=None, walltime=None) -> None:
        """One number (a loss, an accuracy) at a step: a point of a curve."""
        summary = self._tb[2].Summary
        value = summary.Value(tag=tag, simple_value=float(as_array(scalar_value)))
        self._write(summary(value=[value]), global_step, walltime)

    def add_scalars(
        self, main_tag: str, tag_scalar_dict: dict, global_step=None, walltime=None
    ) -> None:
        """Several curves in one chart: each key is written to ``log_dir/main_tag_key``, as
        PyTorch does, so TensorBoard draws them together under ``main_tag``."""
        for key, value in tag_scalar_dict.items():
            folder = str(Path(self.log_dir) / f"{main_tag.replace('/', '_')}_{key}")
            if folder not in self._children:
                self._children[folder] = SummaryWriter(folder, **self._child_options())
            self._children[folder].add_scalar(main_tag, value, global_step, walltime)

    def add_histogram(
        self, tag: str, values, global_step=None, bins="tensorflow", walltime=None, max_bins=None
    ) -> None:
        """The distribution of ``values`` (e.g. a layer's weights) at a step."""
        values = xp.asarray(as_array(values), dtype=xp.float64).ravel()
        if values.size == 0:
            raise ValueError(f"add_histogram({tag!r}): no values")
        edges = _tensorflow_edges(values) if bins == "tensorflow" else bins
        counts, limits = xp.histogram(values, bins=edges)
        histogram = self._tb[2].HistogramProto(
            min=float(values.min()),
            max=float(values.max()),
            num=int(values.size),
            sum=float(values.sum()),
            sum_squares=float((values * values).sum()),
            bucket_limit=[float(x) for x in limits[1:]],
            bucket=[float(c) for c in counts],
        )
        summary = self._tb[2].Summary
        self._write(summary(value=[summary.Value(tag=tag, histo=histogram)]), global_step, walltime)

    def add_image(
        self, tag: str, img_tensor, global_step=None, walltime=None, dataformats: str = "CHW"
    ) -> None:
        """A picture: floats in [0, 1] or bytes, laid out as ``dataformats`` says (CHW, HWC,
        HW) with 1, 3 or 4 channels."""
        from PIL import Image

        image = xp.asarray(as_array(img_tensor))
        if dataformats.upper() == "CHW":
            image = image.transpose(1, 2, 0)
        elif dataformats.upper() == "HW":
            image = image[:, :, None]
        elif dataformats.upper() != "HWC":
            raise ValueError(f"add_image: dataformats must be CHW, HWC or HW, got {dataformats!r}")
        if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
            raise ValueError(
                f"add_image({tag!r}): an image of 1, 3 or 4 channels, got {image.shape}"
            )
        if image.dtype != xp.uint8:
            image = (xp.clip(image, 0.0, 1.0) * 255 + 0.5).astype(xp.uint8)
        height, width, channels = image.shape
        encoded = io.BytesIO()
        Image.fromarray(image[:, :, 0] if channels == 1 else image).save(encoded, format="PNG")
        summary = self._tb[2].Summary
        picture = summary.Image(
            height=height,
            width=width,
            colorspace=channels,
            encoded_image_string=encoded.getvalue(),
        )
        self._write(summary(value=[summary.Value(tag=tag, image=picture)]), global_step, walltime)

    def add_text(self, tag: str, text_string: str, global_step=None, walltime=None) -> None:
        """A text (Markdown) shown in TensorBoard's text tab."""
        _, _, summary_pb2, tensor_pb2, tensor_shape_pb2 = self._tb
        metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="text")
        )
        text = tensor_pb2.TensorProto(
            dtype="DT_STRING",
            string_val=[str(text_string).encode("utf-8")],
            tensor_shape=tensor_shape_pb2.TensorShapeProto(
                dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=1)]
            ),
        )
        value = summary_pb2.Summary.Value(tag=f"{tag}/text_summary", metadata=metadata, tensor=text)
        self._write(summary_pb2.Summary(value=[value]), global_step, walltime)

    # -- the file --------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write what is queued now."""
        self._writer.flush()
        for child in self._children.values():
            child.flush()

    def close(self) -> None:
        self._writer.close()
        for child in self._children.values():
            child.close()

    def __enter__(self) -> SummaryWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _write(self, summary, global_step, walltime) -> None:
        event = self._tb[1].Event(summary=summary, wall_time=walltime or time.time())
        if global_step is not None:
            event.step = int(as_array(global_step))
        self._writer.add_event(event)

    def _child_options(self) -> dict:
        max_queue, flush_secs, suffix = self._options
        return {"max_queue": max_queue, "flush_secs": flush_secs, "filename_suffix": suffix}


def _tensorflow_edges(values):
    """TensorFlow's histogram buckets (what PyTorch's default ``bins='tensorflow'`` means):
    limits growing by 10% from 1e-12 outwards on both sides of zero, cut to the values' range."""
    positive = [1e-12]
    while positive[-1] < 1e20:
        positive.append(positive[-1] * 1.1)
    limits = xp.array([-x for x in reversed(positive)] + [0.0] + positive)
    low, high = values.min(), values.max()
    if low < limits[0] or high > limits[-1]:  # beyond +-1e20: plain equal-width buckets
        return 30
    first = max(int(xp.searchsorted(limits, low, side="right")) - 1, 0)
    last = min(int(xp.searchsorted(limits, high, side="left")) + 1, len(limits))
    edges = limits[first:last]
    return edges if len(edges) > 1 else xp.array([low - 0.5, high + 0.5])
