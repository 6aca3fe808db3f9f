"""read_image: every supported kind of file decodes to BGR uint8 (H, W, 3), as ppdet's Decode."""
import cv2
import numpy as np
import pytest

from mmdet_lite.data.image_io import read_image
from mmdet_lite.utils.errors import UserError

pytest_plugins = ["sample_files"]  # fixtures: sample_images


def _check_bgr(image, h, w):
    assert image.dtype == np.uint8 and image.shape == (h, w, 3)


def test_colour_jpeg_and_png(sample_images):
    png = read_image(sample_images["png"])
    _check_bgr(png, 237, 331)
    np.testing.assert_array_equal(png, sample_images["bgr"])  # lossless: exact BGR order
    jpeg = read_image(sample_images["jpeg"])
    _check_bgr(jpeg, 237, 331)
    assert np.abs(jpeg.astype(int) - sample_images["bgr"]).mean() < 4


def test_grayscale_becomes_three_equal_channels(sample_images):
    image = read_image(sample_images["gray"])
    _check_bgr(image, 101, 77)
    gray = cv2.imread(str(sample_images["gray"]), cv2.IMREAD_UNCHANGED)
    for c in range(3):
        np.testing.assert_array_equal(image[:, :, c], gray)


def test_rgba_drops_alpha(sample_images):
    image = read_image(sample_images["rgba"])
    np.testing.assert_array_equal(image, sample_images["bgr"])


def test_palette_png(sample_images):
    image = read_image(sample_images["palette"])
    _check_bgr(image, 150, 213)
    assert image.std() > 10


def test_16bit_png_scaled_to_8bit(sample_images):
    image = read_image(sample_images["png16"])
    _check_bgr(image, 64, 97)
    deep = cv2.imread(str(sample_images["png16"]), cv2.IMREAD_UNCHANGED)
    assert deep.dtype == np.uint16
    np.testing.assert_array_equal(image[:, :, 0], (deep >> 8).astype(np.uint8))


def test_exif_orientation_applied(sample_images):
    # Paddle's Decode (cv2.imdecode(buf, 1)) honours EXIF orientation: 120x200 stored -> 200x120.
    _check_bgr(read_image(sample_images["exif"]), 200, 120)


def test_missing_file_names_it(tmp_path):
    path = tmp_path / "nope.jpg"
    with pytest.raises(UserError, match="nope.jpg"):
        read_image(path)
    with pytest.raises(UserError, match="not found"):
        read_image(tmp_path)  # a folder is not an image file


@pytest.mark.parametrize("content", [b"", b"this is not a jpeg at all" * 10,
                                     b"\xff\xd8\xff\xe0" + bytes(64)])
def test_corrupt_file_names_it(tmp_path, content):
    path = tmp_path / "broken.jpg"
    path.write_bytes(content)
    with pytest.raises(UserError, match="broken.jpg"):
        read_image(path)
