"""Gt2Solov2Target against ppdet 2.6.0's operator on the same augmented, padded batches; its edge
cases; and SOLOv2 batches from the loader's workers."""
import numpy as np
import pytest
import torch

from mmdet_lite.data.coco import COCODataset
from mmdet_lite.data.collate import TrainCollate
from mmdet_lite.data.resize import PadBatch, Resize
from mmdet_lite.data.solov2_targets import Gt2Solov2Target
from mmdet_lite.data.synthetic import make_shapes_dataset
from mmdet_lite.data.train_loader import build_train_loader

from solov2_cases import (
    NUM_GRIDS,
    SCALE_RANGES,
    make_records,
    our_sample,
    solov2_collate,
)

pytest_plugins = ["solov2_cases"]  # the solov2_reference fixture

TARGET_KEYS = ("ins_label", "cate_label", "grid_order")


def _batches(records, cases):
    collate = solov2_collate()
    for j in range(len(cases) // 2):
        pair = [our_sample(records[cases[c][0]], *cases[c][1:]) for c in (2 * j, 2 * j + 1)]
        yield j, collate(pair)


def test_targets_match_ppdet(solov2_reference):
    records, cases, ref = solov2_reference
    positives = np.zeros(len(NUM_GRIDS), int)
    shared_cells = without_targets = 0
    for j, batch in _batches(records, cases):
        assert "gt_masks" not in batch  # superseded by the targets
        for k in range(2):
            expected = ref[f"b{j}/{k}/fg_num"]
            assert batch["fg_num"].dtype == torch.int64 and batch["fg_num"][k] == expected
            for level in range(len(NUM_GRIDS)):
                for key in (f"{name}{level}" for name in TARGET_KEYS):
                    ours, theirs = batch[key][k].numpy(), ref[f"b{j}/{k}/{key}"]
                    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, key
                    np.testing.assert_array_equal(ours, theirs, err_msg=f"batch {j} {k} {key}")
                order = batch[f"grid_order{level}"][k]
                real = order[batch[f"ins_label{level}"][k].flatten(1).bool().any(1)]
                positives[level] += len(real)
                shared_cells += len(real) > len(set(real.tolist()))
        without_targets += sum(batch[f"ins_label{level}"].shape[1] == 0
                               for level in range(len(NUM_GRIDS)))
    assert (positives > 0).all() and shared_cells > 0 and without_targets > 0


def test_a_level_with_only_an_empty_mask_gives_one_zero_target():
    """ppdet: instances in the range but none with a mask pixel -> one zero target at cell 0
    (it counts in ``M_l``); no instance in the range -> nothing counted."""
    image, boxes, labels, polys = make_records()[-1]  # one large instance + a sub-pixel one
    sample = our_sample((image, boxes, labels, polys), seed=1, config=0)
    assert sample["masks"][-1].sum() == 0
    targets = Gt2Solov2Target(NUM_GRIDS, SCALE_RANGES)
    sample = PadBatch(32)([sample])[0]
    levels, scaled, fg_num = targets.sample_targets(sample, sample_id=1)
    assert len(scaled) == 1  # the large instance: the empty mask is never scaled
    empty_mask_level = levels[0]
    assert empty_mask_level.counted and len(empty_mask_level.mask_rows) == 0
    assert empty_mask_level.grid_order.tolist() == [NUM_GRIDS[0] ** 2]
    assert not empty_mask_level.cate_label.any()
    assert fg_num == sum(len(np.unique(t.grid_order)) for t in levels if t.cate_label.any())
    batch = targets.targets([sample, sample])
    assert batch["ins_label0"].shape[1] == 1 and not batch["ins_label0"].any()
    assert batch["grid_order0"].tolist() == [[0], [NUM_GRIDS[0] ** 2]]
    uncounted = [level for level, t in enumerate(levels) if not t.counted]
    assert uncounted and all(len(levels[level].grid_order) == 1 for level in uncounted)
    assert all(batch[f"ins_label{level}"].shape[1] == 0 for level in uncounted)


def test_centre_region_and_labels():
    """One square instance: the 3 x 3 cells around its centre at the levels of its size."""
    h = w = 256
    masks = np.zeros((1, h, w), np.uint8)
    masks[0, 88:152, 88:152] = 1  # 64 x 64, centre of mass (119.5, 119.5): in cell (7, 7)
    sample = dict(image=np.zeros((h, w, 3), np.uint8), masks=masks, labels=np.array([4]),
                  boxes=np.array([[88, 88, 152, 152]], np.float32))
    out = Gt2Solov2Target(num_grids=(16,), scale_ranges=((32, 128),), coord_sigma=1.0).targets(
        [sample])
    cells = np.nonzero(out["cate_label0"][0].reshape(16, 16))
    assert set(zip(*map(list, cells))) == {(r, c) for r in (6, 7, 8) for c in (6, 7, 8)}
    assert (out["cate_label0"][0][out["cate_label0"][0] > 0] == 5).all()  # label + 1
    assert out["grid_order0"][0].tolist() == [r * 16 + c for r in (6, 7, 8) for c in (6, 7, 8)]
    assert out["ins_label0"].shape == (1, 9, 64, 64) and out["fg_num"].tolist() == [9]
    target = out["ins_label0"][0, 0]
    assert target[22:38, 22:38].all() and target.sum() == 16 * 16  # 1/4 scale
    narrow = Gt2Solov2Target(num_grids=(16,), scale_ranges=((32, 128),), coord_sigma=0.2)
    assert narrow.targets([sample])["fg_num"].tolist() == [1]  # sigma 0.2: its own cell only


def test_bad_batches():
    targets = Gt2Solov2Target()
    sample = dict(image=np.zeros((64, 64, 3), np.uint8), boxes=np.zeros((0, 4), np.float32),
                  labels=np.zeros(0, np.int64), masks=np.zeros((0, 64, 64), np.uint8))
    other = dict(sample, image=np.zeros((32, 64, 3), np.uint8), masks=np.zeros((0, 32, 64)))
    with pytest.raises(ValueError, match="one image size"):
        targets.targets([sample, other])
    with pytest.raises(ValueError, match="masks"):
        targets.targets([{k: v for k, v in sample.items() if k != "masks"}])
    with pytest.raises(ValueError, match="num_grids"):
        Gt2Solov2Target(num_grids=(40, 36))
    empty = targets.targets([sample])
    assert empty["fg_num"].tolist() == [0] and all(
        empty[f"ins_label{level}"].shape == (1, 0, 16, 16) for level in range(5))


def test_loader_workers_give_the_same_batches(tmp_path):
    make_shapes_dataset(tmp_path, num_train=6, num_val=1, seed=2, min_size=(96, 120),
                        max_size=(128, 160), empty_prob=0.0)
    dataset = COCODataset(tmp_path, "annotations/train.json", "train")
    collate = TrainCollate(PadBatch(32), targets=Gt2Solov2Target())

    def batches(num_workers):
        loader = build_train_loader(dataset, batch_size=2, num_workers=num_workers, seed=3,
                                    sample_transforms=[Resize([128, 192], keep_ratio=True)],
                                    collate_fn=collate, with_masks=True)
        loader.set_epoch(0)
        return list(loader)

    serial, workers = batches(0), batches(2)
    assert len(serial) == 3
    for a, b in zip(serial, workers):
        assert a.keys() == b.keys() and a["image_ids"] == b["image_ids"]
        for key, value in a.items():
            if torch.is_tensor(value):
                assert torch.equal(value, b[key]), key
        assert a["images"].shape[-1] % 32 == 0 and a["fg_num"].min() > 0
        assert a["ins_label0"].shape[-2:] == (a["images"].shape[-2] // 4,
                                              a["images"].shape[-1] // 4)


def test_defaults_are_the_shared_readers(paddle_configs):
    import yaml

    for name in ("solov2_reader.yml", "solov2_light_reader.yml"):
        reader = yaml.safe_load((paddle_configs / "solov2/_base_" / name).read_text())
        steps = reader["TrainReader"]["batch_transforms"]
        assert steps[0] == {"PadBatch": {"pad_to_stride": 32}}
        config = steps[1]["Gt2Solov2Target"]
        ours = Gt2Solov2Target()
        assert list(ours.num_grids) == config["num_grids"]
        assert [list(r) for r in ours.scale_ranges] == config["scale_ranges"]
        assert ours.coord_sigma == config["coord_sigma"] and ours.sampling_ratio == 4.0
