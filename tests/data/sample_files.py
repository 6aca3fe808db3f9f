"""Fixtures shared by the data tests (loaded by the test modules as ``pytest_plugins``; no conftest
here so that ``from conftest import ...`` keeps meaning tests/conftest.py)."""
import cv2
import numpy as np
import pytest
from PIL import Image

from mmdet_lite.data.synthetic import make_shapes_dataset


def _texture(h, w, seed):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    return cv2.GaussianBlur(img, (7, 7), 0)


@pytest.fixture(scope="session")
def sample_images(tmp_path_factory):
    """Image files of every kind the readers must handle; returns {kind: path}.

    ``bgr`` holds the pixel data the colour files were written from, and ``exif`` is a JPEG
    with EXIF orientation 6 (rotate 90 degrees clockwise when shown).
    """
    root = tmp_path_factory.mktemp("images")
    bgr = _texture(237, 331, 0)
    paths = {"bgr": bgr}
    paths["jpeg"] = root / "colour.jpg"
    cv2.imwrite(str(paths["jpeg"]), bgr)
    paths["png"] = root / "colour.png"
    cv2.imwrite(str(paths["png"]), bgr)
    paths["gray"] = root / "gray.png"
    cv2.imwrite(str(paths["gray"]), _texture(101, 77, 1)[:, :, 0])
    paths["rgba"] = root / "rgba.png"
    alpha = np.random.default_rng(2).integers(0, 256, size=bgr.shape[:2], dtype=np.uint8)
    cv2.imwrite(str(paths["rgba"]), np.dstack([bgr, alpha]))
    paths["palette"] = root / "palette.png"
    Image.fromarray(_texture(150, 213, 3)[:, :, ::-1]).convert("P").save(paths["palette"])
    paths["png16"] = root / "deep.png"
    deep = _texture(64, 97, 4)[:, :, 1].astype(np.uint16) * 257 + 100
    cv2.imwrite(str(paths["png16"]), deep)
    paths["exif"] = root / "rotated.jpg"
    pil = Image.fromarray(_texture(120, 200, 5)[:, :, ::-1])
    exif = pil.getexif()
    exif[0x0112] = 6
    pil.save(paths["exif"], exif=exif.tobytes())
    paths["gray_jpeg"] = root / "gray.jpg"
    cv2.imwrite(str(paths["gray_jpeg"]), _texture(333, 517, 6)[:, :, 2])
    return paths


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory):
    """A generated shapes dataset: 12 train and 10 val images."""
    out = tmp_path_factory.mktemp("shapes")
    make_shapes_dataset(out, num_train=12, num_val=10, seed=3)
    return out
