"""An up-front check of a COCO-format dataset: every annotation file parses and every image it
names exists and can be read, so that a bad file surfaces in seconds, not hours into training."""
import os
from concurrent.futures import ThreadPoolExecutor

from PIL import Image, UnidentifiedImageError  # Pillow: a dependency of torchvision

from mmdet_lite.data.coco import load_coco_json

__all__ = ["check_image", "check_coco_split"]


def check_image(path, width=None, height=None, decode=False):
    """The problem with image ``path`` as one line, or None when it is fine.

    Reads the header (format and size; compared with the annotation's ``width`` / ``height``
    when given, either orientation, since decoding applies EXIF rotation); ``decode=True`` also
    decodes every pixel, which finds truncated files.
    """
    if not os.path.isfile(path):
        return f"{path}: missing"
    try:
        with Image.open(path) as image:
            size = image.size
            if decode:
                image.load()
    except UnidentifiedImageError:
        return f"{path}: not an image file (unknown format)"
    except (OSError, SyntaxError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        return f"{path}: unreadable ({reason})"
    if width and height and size not in ((width, height), (height, width)):
        return (f"{path}: {size[0]}x{size[1]} pixels, but the annotation file says "
                f"{width}x{height}")
    return None


def check_coco_split(ann_path, image_dir, decode=False, threads=8):
    """``(number of images, [problem lines])`` for one annotation file and its image folder.

    The annotation file is checked as the loaders check it (``load_coco_json``: a ``UserError``
    for a broken file); each image by ``check_image``, ``threads`` at a time.
    """
    data = load_coco_json(ann_path)
    jobs = [(os.path.join(image_dir, img["file_name"]), img.get("width"), img.get("height"))
            for img in data["images"]]
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        problems = list(pool.map(lambda job: check_image(*job, decode=decode), jobs))
    return len(jobs), [p for p in problems if p is not None]
