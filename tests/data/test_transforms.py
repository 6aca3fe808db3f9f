"""TestTransform: ppdet's Decode + Resize(keep_ratio=False, interp=2), bit-identical but for
OpenCV's cubic rounding (see MAX_CUBIC_ROUNDING)."""
import numpy as np

from mmdet_lite.data.geometric import TestTransform
from mmdet_lite.data.image_io import read_image

from conftest import REPO_ROOT, run_paddle

pytest_plugins = ["sample_files"]  # fixtures: sample_images

_KINDS = ("jpeg", "png", "gray", "rgba", "palette", "png16", "exif", "gray_jpeg")
_SIZES = ((416, 416), (320, 320), (300, 512))
# ppdet runs OpenCV 4.5.5; the OpenCV of our environment (4.11 .. 5.1 measured) rounds INTER_CUBIC
# differently at a few pixel values per resized image (by one level): decoding, sizes and
# scale factors stay bit-identical, and at most this fraction of the values may be one level off.
MAX_CUBIC_ROUNDING = 1e-4


def test_output_layout():
    image = np.zeros((100, 50, 3), np.uint8)
    image[..., 0] = 255  # blue in BGR
    chw, scale = TestTransform((64, 32))(image)
    assert chw.dtype == np.uint8 and chw.shape == (3, 64, 32) and chw.flags.c_contiguous
    assert (chw[2] == 255).all() and (chw[:2] == 0).all()  # RGB order: blue is channel 2
    assert scale.dtype == np.float32
    np.testing.assert_array_equal(scale, np.float32([0.64, 0.64]))
    assert TestTransform(416).target_size == (416, 416)


def test_bit_identical_to_ppdet(sample_images, tmp_path):
    paths = [str(sample_images[k]) for k in _KINDS]
    out = tmp_path / "paddle.npz"
    sizes = ",".join(f"{h}x{w}" for h, w in _SIZES)
    run_paddle(REPO_ROOT / "tests/reference/paddle_eval_transform.py", out, sizes, *paths)
    ref = np.load(out)
    mismatched = 0
    for s, size in enumerate(_SIZES):
        transform = TestTransform(size)
        for i, kind in enumerate(_KINDS):
            chw, scale = transform(read_image(paths[i]))
            expected = ref[f"image_{s}_{i}"]
            assert expected.shape == (*size, 3), (kind, size)
            diff = np.abs(chw.transpose(1, 2, 0).astype(np.float32) - expected)
            assert diff.max() <= 1 and (diff > 0).mean() <= MAX_CUBIC_ROUNDING, (kind, size)
            mismatched += int((diff > 0).sum())
            assert scale.dtype == ref[f"scale_{s}_{i}"].dtype
            assert np.array_equal(scale, ref[f"scale_{s}_{i}"]), (kind, size)
    print(f"pixel values off by one over {len(_KINDS) * len(_SIZES)} images: {mismatched}")
