"""SummaryWriter writes event files that TensorBoard's own reader reads back."""

import numpy as np
import pytest

import chainrule as cr

pytest.importorskip("tensorboard", reason="SummaryWriter needs the tensorboard extra")
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)

from chainrule.utils.tensorboard import SummaryWriter  # noqa: E402


def read(folder) -> EventAccumulator:
    events = EventAccumulator(str(folder), size_guidance={"tensors": 0, "images": 0})
    events.Reload()
    return events


def test_scalars_histograms_images_and_text_read_back(tmp_path):
    weights = cr.randn(1000)
    with SummaryWriter(tmp_path / "run") as writer:
        for step in range(5):
            writer.add_scalar("loss", cr.tensor(1.0 / (step + 1)), step)
        writer.add_histogram("weights", weights, 3)
        writer.add_image("digit", np.linspace(0, 1, 28 * 28).reshape(1, 28, 28), 4)
        writer.add_image("colour", np.zeros((8, 6, 3), dtype=np.uint8), 4, dataformats="HWC")
        writer.add_text("note", "the **loss** falls", 2)
    events = read(tmp_path / "run")
    loss = events.Scalars("loss")
    assert [e.step for e in loss] == [0, 1, 2, 3, 4]
    np.testing.assert_allclose([e.value for e in loss], [1, 1 / 2, 1 / 3, 1 / 4, 1 / 5], rtol=1e-6)
    histogram = events.Histograms("weights")[0]
    assert histogram.step == 3 and histogram.histogram_value.num == 1000
    assert sum(histogram.histogram_value.bucket) == 1000
    np.testing.assert_allclose(histogram.histogram_value.sum, float(weights.sum()), rtol=1e-5)
    digit = events.Images("digit")[0]
    assert (digit.width, digit.height, digit.step) == (28, 28, 4)
    assert digit.encoded_image_string.startswith(b"\x89PNG")
    assert (events.Images("colour")[0].width, events.Images("colour")[0].height) == (6, 8)
    text = events.Tensors("note/text_summary")[0]
    assert text.step == 2 and text.tensor_proto.string_val[0] == b"the **loss** falls"


def test_add_scalars_draws_several_curves_in_one_chart(tmp_path):
    writer = SummaryWriter(tmp_path / "run")
    for step in range(3):
        writer.add_scalars("loss", {"train": 1.0 / (step + 1), "test": 2.0 / (step + 1)}, step)
    writer.close()
    train = read(tmp_path / "run" / "loss_train").Scalars("loss")
    test = read(tmp_path / "run" / "loss_test").Scalars("loss")
    assert [e.value for e in test] == pytest.approx([2 * e.value for e in train])


def test_bad_images_and_empty_histograms_are_named(tmp_path):
    writer = SummaryWriter(tmp_path / "run")
    with pytest.raises(ValueError, match="an image of 1, 3 or 4 channels"):
        writer.add_image("x", np.zeros((2, 5, 5)))
    with pytest.raises(ValueError, match="no values"):
        writer.add_histogram("x", np.zeros(0))
    writer.close()


def test_the_default_folder_is_runs_date_host(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    writer = SummaryWriter(comment="-mine")
    writer.close()
    assert writer.get_logdir().startswith("runs/") and writer.get_logdir().endswith("-mine")
