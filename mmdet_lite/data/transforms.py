"""Evaluation / inference transforms (PaddleDetection ``EvalReader`` / ``TestReader``)."""
import cv2
import numpy as np

__all__ = ["TestTransform"]


class TestTransform:
    """Paddle's ``Decode`` colour swap + ``Resize(keep_ratio=False)``, without normalisation.

    Call with a BGR uint8 image (H, W, 3); returns ``(image, scale_factor)`` where ``image`` is
    an RGB uint8 array (3, th, tw) and ``scale_factor`` is float32 ``[th / H, tw / W]``
    (scale_y, scale_x). The resize uses cv2's ``fx``/``fy`` form exactly as ppdet's
    ``Resize.apply_image``, so the pixels are bit-identical to Paddle's. Normalisation happens in
    the model.

    Args:
        target_size: ``(h, w)`` or an int for a square size.
        interp: cv2 interpolation flag (PicoDet's EvalReader uses ``interp: 2``, INTER_CUBIC).
    """

    __test__ = False  # not a pytest test class

    def __init__(self, target_size, interp=cv2.INTER_CUBIC):
        if isinstance(target_size, int):
            target_size = (target_size, target_size)
        self.target_size = (int(target_size[0]), int(target_size[1]))
        self.interp = interp

    def __call__(self, image):
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        th, tw = self.target_size
        h, w = rgb.shape[:2]
        scale_y, scale_x = th / h, tw / w
        resized = cv2.resize(rgb, None, None, fx=scale_x, fy=scale_y, interpolation=self.interp)
        scale_factor = np.asarray([scale_y, scale_x], dtype=np.float32)
        return np.ascontiguousarray(resized.transpose(2, 0, 1)), scale_factor

    def __repr__(self):
        return f"{type(self).__name__}(target_size={self.target_size}, interp={self.interp})"
