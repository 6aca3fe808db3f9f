"""SOLOv2 eval batches padded as Paddle pads them: ppdet's EvalReader pads after
``NormalizeImage``, so the padding is 0 in normalised space (the mean colour in pixels); PicoDet
and RT-DETR keep their zero-pixel uint8 padding.

The SOLOv2 grids cover the whole padded canvas, so an image in a batch with a larger canvas gets
other grid cells than alone (in Paddle as here); with the same canvas its outputs and detections
are those it gets alone.
"""
import numpy as np
import torch

from conftest import REPO_ROOT, run_paddle_npz
from tiny_picodet import tiny_exp as tiny_picodet_exp
from tiny_solov2 import solov2_exp

PAD_BATCH = REPO_ROOT / "tests/reference/paddle_pad_batch.py"


def _sample(image, image_id):
    return dict(image=torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
                scale_factor=torch.ones(2), image_id=image_id,
                orig_size=torch.tensor(image.shape[:2]))


def _images(*sizes, seed=0):
    rng = np.random.RandomState(seed)
    return [rng.randint(0, 256, (h, w, 3)).astype(np.uint8) for h, w in sizes]


def test_normalised_batch_equals_ppdet_normalize_and_pad_batch(tmp_path):
    exp = solov2_exp()
    images = _images((100, 150), (130, 190), (64, 96))
    batch = exp.get_eval_collate()([_sample(im, i) for i, im in enumerate(images)])
    assert batch["images"].shape == (3, 3, 160, 192)
    ours = exp.get_model().normalize(batch["images"].float()).numpy()
    ref = run_paddle_npz(PAD_BATCH, tmp_path, dict(
        mean=np.array(exp.pixel_mean), std=np.array(exp.pixel_std),
        **{f"image_{i}": im for i, im in enumerate(images)}))["batch"]
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-6)
    assert np.abs(ours[0, :, 100:]).max() < 2e-6 and np.abs(ours[2, :, :, 96:]).max() < 2e-6


def test_box_families_keep_zero_pixel_uint8_padding():
    images = _images((100, 150), (64, 96))
    batch = tiny_picodet_exp().get_eval_collate()([_sample(im, i) for i, im in enumerate(images)])
    assert batch["images"].dtype == torch.uint8 and batch["images"].shape == (2, 3, 128, 160)
    assert not batch["images"][0, :, 100:].any() and not batch["images"][1, :, :, 96:].any()


@torch.inference_mode()
def test_image_in_a_batch_of_the_same_canvas_gets_its_own_detections():
    torch.manual_seed(0)
    exp = solov2_exp()
    model = exp.get_model().eval()
    model.head.solo_cate.bias.fill_(1.0)
    small, large = _images((100, 150), (126, 158))
    collate = exp.get_eval_collate()

    def run(samples):
        batch = collate(samples)
        outputs = model(batch["images"].float())
        return outputs, model.postprocess(outputs, batch["scale_factors"], batch["input_sizes"],
                                          batch["orig_sizes"])[0]

    raw_alone, alone = run([_sample(small, 0)])
    raw_batched, batched = run([_sample(small, 0), _sample(large, 1)])
    for a, b in zip(raw_alone, raw_batched):  # scores (N, A, C), kernels (N, A, E), features
        torch.testing.assert_close(b[:1], a, rtol=1e-4, atol=1e-4)
    assert len(alone) > 2 and alone.masks.shape[-2:] == (100, 150)
    torch.testing.assert_close(batched.scores, alone.scores, rtol=0, atol=1e-4)
    torch.testing.assert_close(batched.labels, alone.labels)
    assert (batched.masks != alone.masks).float().mean() < 1e-3
