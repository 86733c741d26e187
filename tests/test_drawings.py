"""Your own pictures made to look like the training images (chainrule.runs.drawings)."""

import numpy as np
import pytest
from scipy import ndimage

from chainrule import data
from chainrule.runs import RunError
from chainrule.runs.drawings import to_training_image


def drawn(image, scale: int, margin: int):
    """``image`` (light ink on black, levels in [0, 1]) as a drawing: enlarged ``scale`` times,
    on a white page with ``margin`` pixels around it, in black ink."""
    big = np.kron(image, np.ones((scale, scale)))
    return 1.0 - np.pad(big, margin)


def test_an_mnist_digit_drawn_large_in_black_is_read_back_as_mnist_made_it(mnist_dir):
    """MNIST's digits fit a 20x20 box centred by mass in 28x28: a test digit drawn 7 times as
    large, black on white, comes back as itself (up to the resampling)."""
    (_, _), (images, _) = data.load_mnist(mnist_dir)
    for image in images[:20] / 255.0:
        prepared = to_training_image(drawn(image, 7, 40), (28, 28), "mnist")
        assert prepared.pixels.shape == (28, 28) and "inverted" in prepared.described()
        correlation = np.corrcoef(prepared.pixels.ravel(), image.ravel())[0, 1]
        assert correlation > 0.99, correlation


def test_mnist_scaling_fits_20x20_and_centres_by_mass():
    page = np.ones((300, 500))
    page[40:220, 300:330] = 0.0  # a thick "1": 180 pixels tall, off to one side
    page[40:70, 250:330] = 0.0  # with a flag on the left, so its mass lies right of its box
    prepared = to_training_image(page, (28, 28), "mnist")
    rows, cols = np.nonzero(prepared.pixels > 0.05)
    assert rows.max() - rows.min() + 1 == 20 and cols.max() - cols.min() + 1 <= 20
    assert np.allclose(ndimage.center_of_mass(prepared.pixels), (14, 14), atol=0.5)
    assert prepared.pixels.max() == pytest.approx(1.0)
    assert "180x180" not in prepared.described() and "80x180" in prepared.described()


def test_a_picture_already_in_the_training_form_is_taken_as_it_is():
    images, _ = data.load_digits()
    image = images[5] / 16
    prepared = to_training_image(image, (8, 8), "digits")
    assert prepared.steps == [] and np.array_equal(prepared.pixels, image)


def test_other_image_sets_resize_the_whole_picture():
    page = np.zeros((90, 60))
    page[:45] = 1.0
    prepared = to_training_image(page, (6, 4), None)
    assert prepared.pixels.shape == (6, 4) and "resized 60x90 to 4x6" in prepared.described()
    assert np.allclose(prepared.pixels[:3], 1.0) and np.allclose(prepared.pixels[3:], 0.0)


def test_a_blank_page_is_refused_with_one_line():
    with pytest.raises(RunError, match=r"all one grey.*\(8, 8\)"):
        to_training_image(np.ones((50, 40)), (8, 8), "digits")
