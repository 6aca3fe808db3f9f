"""``tools/demo.py``: a loop of ``Predictor`` over images, a video or a webcam."""
import os
import sys
import time
from collections import Counter

import cv2
from loguru import logger

from mmdet_lite.core.predictor import Predictor
from mmdet_lite.utils.device import device_name
from mmdet_lite.utils.errors import UserError
from mmdet_lite.utils.fileio import ensure_writable_dir
from mmdet_lite.utils.logger import setup_logger
from mmdet_lite.utils.visualize import vis

__all__ = ["run_demo", "list_images", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def list_images(path):
    """An image file -> ``[path]``; a folder -> its image files (recursively, sorted)."""
    if path is None:
        raise UserError("--path is required: an image file or a folder of images")
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise UserError(f"--path {path}: no such file or folder")
    found = sorted(os.path.join(root, name) for root, _, names in os.walk(path) for name in names
                   if name.lower().endswith(IMAGE_EXTENSIONS))
    if not found:
        raise UserError(f"--path {path}: the folder holds no image ({', '.join(IMAGE_EXTENSIONS)})")
    return found



def _draw(frame, result, conf):
    return vis(frame, result.boxes, result.scores, result.labels, result.names, conf, result.masks)


def _image_demo(predictor, paths, root, save_dir, conf):
    from mmdet_lite.data.image_io import read_image

    for path in paths:
        image = read_image(path)
        start = time.perf_counter()
        result = predictor(image)
        elapsed = 1000 * (time.perf_counter() - start)
        counts = Counter(result.names[int(label)] for label in result.labels)
        found = ", ".join(f"{n} {name}" for name, n in counts.most_common())
        found = f": {found}" if found else ""
        logger.info(f"{path}: {len(result)} detections in {elapsed:.1f} ms{found}")
        if save_dir:
            name = os.path.relpath(path, root) if os.path.isdir(root) else os.path.basename(path)
            out = os.path.join(save_dir, name)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            if not cv2.imwrite(out, _draw(image, result, conf)):
                raise UserError(f"cannot write {out}")


def _video_demo(predictor, source, save_path, conf, show):
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        kind = "webcam" if isinstance(source, int) else "video file"
        raise UserError(f"cannot open {kind} {source}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    writer = None
    if save_path:
        writer = cv2.VideoWriter(save_path, cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not writer.isOpened():
            raise UserError(f"cannot write video {save_path}")
    frames, detections, start = 0, 0, time.perf_counter()
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            result = predictor(frame)
            drawn = _draw(frame, result, conf)
            frames += 1
            detections += int((result.scores >= conf).sum())
            if writer is not None:
                writer.write(drawn)
            if show:
                cv2.imshow("mmdet_lite", drawn)
                if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                    break
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    if frames == 0 and not isinstance(source, int):
        raise UserError(f"video file {source} has no readable frame")
    seconds = time.perf_counter() - start
    logger.info(f"{frames} frames in {seconds:.1f}s ({frames / max(seconds, 1e-9):.1f} FPS, "
                f"model and drawing), {detections} detections with score >= {conf}")


def _has_display():
    """Whether a window can be opened (an X or Wayland display, or not Linux)."""
    return sys.platform != "linux" or bool(os.environ.get("DISPLAY")
                                            or os.environ.get("WAYLAND_DISPLAY"))


def _results_root(ckpt, opts, predictor):
    """The folder of a training run's checkpoint (``train_log.txt`` beside it) unless
    ``output_dir`` is given, else ``<output_dir>/<exp_name>``."""
    folder = os.path.dirname(os.path.abspath(ckpt))
    if "output_dir" not in opts[0::2] and os.path.isfile(os.path.join(folder, "train_log.txt")):
        return folder
    return predictor.exp.save_dir


def run_demo(args):
    """Everything ``tools/demo.py`` does, for parsed ``args`` (see ``cli_args.demo_parser``)."""
    from mmdet_lite.core.cli_args import split_opts

    setup_logger(rank=0)
    opts = split_opts(args.opts)
    if len(opts) % 2:
        raise UserError(f"overrides must be KEY VALUE pairs, got {len(opts)} items: "
                        f"{' '.join(opts)}")
    paths = list_images(args.path) if args.demo == "image" else None
    if args.demo == "video" and (args.path is None or not os.path.isfile(args.path)):
        raise UserError(f"--path {args.path}: no such video file")
    predictor = Predictor(args.exp_file or args.name, args.ckpt, device=device_name(args.device),
                          conf=args.conf, tsize=args.tsize, fp16=args.fp16, fuse=args.fuse,
                          **dict(zip(opts[0::2], opts[1::2])))
    save_dir = None
    if args.save_result:
        stamp = time.strftime("%Y_%m_%d_%H_%M_%S", time.localtime())
        save_dir = ensure_writable_dir(os.path.join(_results_root(args.ckpt, opts, predictor),
                                                    "vis_res", stamp))
    if args.demo == "image":
        _image_demo(predictor, paths, args.path, save_dir, args.conf)
    else:
        source = args.path if args.demo == "video" else args.camid
        name = os.path.basename(args.path) if args.demo == "video" else f"camera{args.camid}.mp4"
        save_path = os.path.join(save_dir, os.path.splitext(name)[0] + ".mp4") if save_dir else None
        show = not save_dir and _has_display()
        if not save_dir and not show:
            logger.warning("no display and no --save_result: the drawn frames are neither shown "
                           "nor saved (pass --save_result to write the video)")
        _video_demo(predictor, source, save_path, args.conf, show)
    if save_dir:
        print(f"results saved to {save_dir}", flush=True)
