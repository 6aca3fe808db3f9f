"""``Predictor``: an exp file plus a checkpoint turned into a callable on images."""
import os
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Union

import numpy as np
import torch
from loguru import logger

from mmdet_lite.core.class_names import adopt_checkpoint_classes, exp_class_names
from mmdet_lite.exp import BaseExp, build_exp
from mmdet_lite.models.architectures.base import POSTPROCESS_SIZES
from mmdet_lite.models.fuse import fuse_model
from mmdet_lite.utils.checkpoint import load_checkpoint_state, load_weights
from mmdet_lite.utils.device import preferred_memory_format, select_device
from mmdet_lite.utils.errors import UserError
from mmdet_lite.utils.tensors import to_float32

ImageInput = Union[str, os.PathLike, np.ndarray]
"""An image for the ``Predictor``: a file path, or a BGR uint8 array (H, W, 3)."""

__all__ = ["Predictor", "Result"]


@dataclass
class Result:
    """Detections of one image, in the original image's pixels.

    boxes: float32 (N, 4) x1 y1 x2 y2; scores: float32 (N,); labels: int64 (N,) contiguous class
    indices; masks: bool (N, H, W) for mask models, else None; names: class names by label.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    masks: Optional[np.ndarray]
    names: list

    def __len__(self):
        return len(self.scores)

    def __repr__(self):
        counts = np.bincount(self.labels, minlength=1) if len(self) else np.zeros(0, np.int64)
        found = ", ".join(f"{n} {self.names[k] if k < len(self.names) else k}"
                          for k, n in enumerate(counts) if n)
        return (f"Result({len(self)} detections{': ' + found if found else ''}"
                f"{', masks' if self.masks is not None else ''})")


def clip_to_image(result: Result, image_hw: Sequence[int]) -> Result:
    """``result`` with its boxes clipped to the image (0..w, 0..h) of size ``image_hw`` (h, w)."""
    h, w = (float(v) for v in image_hw)
    np.clip(result.boxes[:, 0::2], 0.0, w, out=result.boxes[:, 0::2])
    np.clip(result.boxes[:, 1::2], 0.0, h, out=result.boxes[:, 1::2])
    return result


class Predictor:
    """Run a detector described by an exp file (path, exp name or exp object) with a checkpoint.

    ``Predictor(exp_file, ckpt, device="cpu", conf=0.3, tsize=None, fp16=False, fuse=False,
    clip=True, **overrides)``; ``fuse`` folds BatchNorm into the convolutions (``fuse_model``);
    boxes are clipped to the image unless ``clip=False`` (raw values, to compare with references);
    ``overrides`` are exp fields as in ``KEY VALUE`` (``num_classes=5``; nested keys with ``__`` or
    ``**{"head.nms.keep_top_k": 50}``). ``predictor(image)`` takes a path or a BGR uint8 array
    (H, W, 3) and returns a ``Result`` with the detections scoring at least ``conf``;
    ``predict_batch([...])`` runs several images in one forward pass.
    """

    def __init__(self, exp_file: Union[str, os.PathLike, BaseExp], ckpt: Union[str, os.PathLike],
                 device: str = "cpu", conf: float = 0.3,
                 tsize: Union[int, str, Sequence[int], None] = None, fp16: bool = False,
                 fuse: bool = False, clip: bool = True, **overrides: Any):
        opts = []
        for key, value in overrides.items():
            opts += [key.replace("__", "."), value]
        self.exp = build_exp(exp_file, opts, tsize)
        self.device = select_device(device)
        self.fp16 = bool(fp16) and self.device.type == "cuda"
        if fp16 and not self.fp16:
            logger.warning("fp16 inference needs a GPU; running in float32")
        self.conf = float(conf)
        self.clip = bool(clip)
        threshold = self.exp.get_score_threshold()
        if threshold is not None and threshold > self.conf:
            self.exp.set_score_threshold(self.conf)  # NMS must not drop what ``conf`` keeps
        state = adopt_checkpoint_classes(self.exp, ckpt, given=opts[0::2])
        self.model = self.exp.get_model()
        load_weights(self.model, load_checkpoint_state(state, ckpt), source=ckpt)
        self.model.eval()
        if fuse:
            fuse_model(self.model)
        self.memory_format = preferred_memory_format(self.device)
        self.model.to(self.device, memory_format=self.memory_format)
        self.transform = self.exp.get_test_transform()
        self.names = exp_class_names(self.exp)

    @staticmethod
    def _as_bgr(image):
        from mmdet_lite.data.image_io import read_image

        if isinstance(image, (str, os.PathLike)):
            return read_image(image)
        array = np.asarray(image)
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
            raise UserError(f"an image must be a path or a BGR uint8 array (H, W, 3), got "
                            f"{array.dtype} {tuple(array.shape)}")
        return array

    @torch.inference_mode()
    def predict_batch(self, images: Sequence[ImageInput]) -> List[Result]:
        """List of paths / BGR arrays -> list of ``Result`` (one forward pass for the batch)."""
        samples = []
        for i, image in enumerate(images):
            bgr = self._as_bgr(image)
            chw, scale_factor = self.transform(bgr)
            samples.append(dict(image=torch.from_numpy(chw), scale_factor=scale_factor, image_id=i,
                                orig_size=bgr.shape[:2]))
        if not samples:
            return []
        batch = self.exp.get_eval_collate()(samples)
        x = batch["images"].to(self.device).float().contiguous(memory_format=self.memory_format)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.fp16):
            outputs = to_float32(self.model(x))
        sizes = [batch[key].to(self.device) for key in POSTPROCESS_SIZES]
        results = [self._result(det) for det in self.model.postprocess(outputs, *sizes)]
        return [clip_to_image(r, hw) for r, hw in zip(results, batch["orig_sizes"])] \
            if self.clip else results

    def __call__(self, image: ImageInput) -> Result:
        """A path or a BGR uint8 array (H, W, 3) -> ``Result`` in the image's pixels."""
        return self.predict_batch([image])[0]

    def _result(self, det):
        """``Detections`` -> ``Result`` of the detections scoring at least ``conf``, on the CPU."""
        det = det.select(det.scores >= self.conf)
        return Result(
            boxes=det.boxes.float().cpu().numpy().reshape(-1, 4),
            scores=det.scores.float().cpu().numpy(),
            labels=det.labels.cpu().numpy().astype(np.int64),
            masks=None if det.masks is None else det.masks.cpu().numpy().astype(bool),
            names=self.names,
        )
