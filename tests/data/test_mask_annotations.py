"""``check_mask_annotations``: what a mask exp accepts (partly outside polygons, RLE) and what it
names as an error (RLE of another size, a polygon that is not numbers)."""
import pytest

from mmdet_lite.data.coco import coco_from_dict
from mmdet_lite.data.instances import segmentation_to_bitmap
from mmdet_lite.data.mask_annotations import check_mask_annotations
from mmdet_lite.utils.errors import UserError


class _Dataset:
    def __init__(self, segmentation):
        self.ann_path = "ann.json"
        self.coco = coco_from_dict(dict(
            images=[dict(id=7, file_name="a.jpg", height=20, width=30)],
            categories=[dict(id=1, name="thing")],
            annotations=[dict(id=3, image_id=7, category_id=1, bbox=[0, 0, 5, 5], area=25,
                              iscrowd=0, segmentation=segmentation)]))


def test_partly_outside_polygon_is_accepted_and_clipped():
    polygon = [[-10.0, -10.0, 10.0, -10.0, 10.0, 10.0, -10.0, 10.0]]
    check_mask_annotations(_Dataset(polygon), "exp")
    mask = segmentation_to_bitmap(polygon, 20, 30)
    assert mask.shape == (20, 30) and mask[:10, :10].all() and mask.sum() == 100


def test_rle_of_the_image_size_is_accepted():
    check_mask_annotations(_Dataset(dict(size=[20, 30], counts=[600])), "exp")


@pytest.mark.parametrize("segmentation, problem", [
    (dict(size=[30, 20], counts=[600]), "an RLE of size [30, 20] on an image of [height, width] "
                                        "[20, 30]"),
    ([[1, 2, "3", 4, 5, 6]], "a polygon that is not a flat list of numbers"),
    ([], "no 'segmentation'"),
])
def test_bad_segmentations_are_named(segmentation, problem):
    with pytest.raises(UserError) as err:
        check_mask_annotations(_Dataset(segmentation), "exp")
    assert str(err.value).startswith("annotation file ann.json: annotation 3 (image 7) has ")
    assert problem in str(err.value)
