"""Eval loader: exact sharding over ranks and PadBatch-style collation."""
import pytest
import torch

from mmdet_lite.data.coco import COCODataset
from mmdet_lite.data.geometric import TestTransform
from mmdet_lite.data.loader import build_eval_loader, eval_collate, shard_indices

pytest_plugins = ["sample_files"]  # fixtures: shapes_dir


class _Sizes(torch.utils.data.Dataset):
    """Items of varying size whose pixels all equal (index + 1)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        h, w = 10 + 7 * (i % 3), 20 + 11 * (i % 4)
        return dict(image=torch.full((3, h, w), i + 1, dtype=torch.uint8),
                    scale_factor=torch.tensor([1.0, 2.0]), image_id=100 + i,
                    orig_size=torch.tensor([h, w]))


@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("n", [1, 7, 10])
def test_shards_cover_each_image_once(world_size, n):
    seen = []
    for rank in range(world_size):
        loader = build_eval_loader(_Sizes(n), batch_size=2, num_workers=0, rank=rank,
                                   world_size=world_size)
        seen += [i for batch in loader for i in batch["image_ids"]]
    assert sorted(seen) == [100 + i for i in range(n)]
    assert shard_indices(n, 1, 3) == list(range(1, n, 3))


def test_invalid_rank():
    with pytest.raises(ValueError):
        shard_indices(5, 3, 3)


def test_collate_pads_bottom_right_to_stride():
    ds = _Sizes(3)
    batch = eval_collate([ds[0], ds[1], ds[2]])
    images = batch["images"]
    assert images.dtype == torch.uint8 and images.shape == (3, 3, 32, 64)  # max 24x42 -> 32x64
    for i in range(3):
        h, w = ds[i]["image"].shape[1:]
        assert (images[i, :, :h, :w] == i + 1).all()
        assert images[i].sum() == (i + 1) * 3 * h * w  # zeros everywhere else
    assert batch["input_sizes"].tolist() == [list(ds[i]["image"].shape[1:]) for i in range(3)]
    assert batch["scale_factors"].dtype == torch.float32 and batch["scale_factors"].shape == (3, 2)
    assert batch["orig_sizes"].dtype == torch.int64 and batch["orig_sizes"].shape == (3, 2)
    assert batch["image_ids"] == [100, 101, 102]
    assert eval_collate([ds[1]], pad_to_stride=0)["images"].shape == (1, 3, 17, 31)


def test_loader_over_coco_dataset(shapes_dir):
    ds = COCODataset(shapes_dir, "annotations/val.json", "val", transform=TestTransform(416))
    batches = list(build_eval_loader(ds, batch_size=4, num_workers=1, rank=1, world_size=2))
    assert [len(b["image_ids"]) for b in batches] == [4, 1]
    assert batches[0]["images"].shape == (4, 3, 416, 416)
    assert sum((b["image_ids"] for b in batches), []) == ds.image_ids[1::2]
    for b in batches:
        for img_id, size, sf in zip(b["image_ids"], b["orig_sizes"], b["scale_factors"]):
            h, w = ds.coco.imgs[img_id]["height"], ds.coco.imgs[img_id]["width"]
            assert size.tolist() == [h, w]
            assert sf.tolist() == pytest.approx([416 / h, 416 / w])
