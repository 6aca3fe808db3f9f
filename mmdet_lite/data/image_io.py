"""Image decoding exactly as PaddleDetection's ``Decode`` operator does it."""
import os

import cv2
import numpy as np

from mmdet_lite.utils.errors import UserError

__all__ = ["read_image", "decode_image"]


def decode_image(data, name="<bytes>"):
    """Decode encoded image bytes into a BGR uint8 array (H, W, 3).

    Uses ``cv2.imdecode(buf, cv2.IMREAD_COLOR)`` like ppdet's ``Decode``: EXIF orientation is
    applied, grayscale and palette images become 3 channels, alpha is dropped and 16-bit images
    are scaled to 8 bits (value >> 8).
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if image is None:
        raise UserError(f"cannot decode image file {name}: it is empty, corrupt or not an image")
    return image


def read_image(path):
    """Read an image file (JPEG, PNG, BMP, ...) as a BGR uint8 array (H, W, 3).

    Raises ``UserError`` naming the file when it is missing or cannot be decoded.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"image file not found: {path}")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise UserError(f"cannot read image file {path}: {err.strerror}") from err
    return decode_image(data, path)
