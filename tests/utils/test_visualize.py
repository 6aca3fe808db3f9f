"""Drawing detections: labels stay inside the image and do not cover each other."""
import numpy as np
import pytest

from mmdet_lite.utils.visualize import color_for, draw_mask, place_label, vis


def _overlap(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_labels_stay_inside_and_do_not_stack():
    placed = []
    # a box at the top-right corner: the label goes inside the image, under the top edge
    assert place_label((300, 0, 326, 40), (60, 14), (326, 200), placed) == (266, 0)
    # three boxes a few pixels apart: each label moves below the ones placed before it
    for dy in (0, 3, 6):
        place_label((100, 50 + dy, 200, 150), (60, 14), (326, 200), placed)
    for i, a in enumerate(placed):
        assert 0 <= a[0] and a[2] <= 326 and 0 <= a[1] and a[3] <= 200
        assert not any(_overlap(a, b) for b in placed[i + 1:]), placed
    # no room left below: kept inside the image anyway
    crowded = [(0, y, 60, y + 14) for y in range(0, 200, 14)]
    x, y = place_label((0, 190, 50, 199), (60, 14), (60, 200), crowded)
    assert (x, y) == (0, 186)


def test_vis_draws_inside_the_image():
    image = np.zeros((60, 80, 3), np.uint8)
    drawn = vis(image, [[70, 1, 120, 50], [-5, 40, 30, 70]], [0.9, 0.5], [0, 1], ["a", "b"])
    assert drawn.shape == image.shape and drawn.any() and not image.any()
    assert drawn[:, 60:].any()  # the first label, moved left from x=70 but still at the right


def test_vis_blends_masks_and_traces_their_outlines():
    image = np.full((120, 160, 3), 100, np.uint8)
    masks = np.zeros((2, 120, 160), bool)
    masks[0, 40:80, 30:70] = True  # a square, away from its box's edges and label
    masks[1, 90:110, 120:150] = True  # below ``conf``: not drawn
    boxes = [[20, 30, 80, 90], [110, 85, 155, 115]]
    drawn = vis(image, boxes, [0.9, 0.1], [2, 1], ["a", "b", "c"], conf=0.3, masks=masks)
    color = np.asarray(color_for(2), np.float32)
    blended = (100 * 0.5 + color * 0.5).astype(np.uint8)
    assert (drawn[45:75, 35:65] == blended).all()  # translucent overlay inside the mask
    assert (drawn[40, 30:70] == color.astype(np.uint8)).all()  # the outline, in the colour
    assert (drawn[79, 30:70] == color.astype(np.uint8)).all()
    assert (drawn[35, 25:75] == 100).all() and (drawn[85, 25:75] == 100).all()  # box, not mask
    assert (drawn[92:108, 122:148] == 100).all()  # the skipped detection's mask
    assert (image == 100).all()
    with pytest.raises(ValueError, match="masks must be in the image's pixels"):
        draw_mask(image.copy(), masks[0][:60], (0, 0, 255))
