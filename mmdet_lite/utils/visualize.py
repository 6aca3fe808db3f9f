"""Draw detections (boxes, class names, scores, optional masks) on a BGR image."""
import colorsys

import cv2
import numpy as np

__all__ = ["vis", "draw_mask", "color_for", "place_label"]

MASK_ALPHA = 0.5
"""Weight of the class colour in a mask's translucent overlay."""


def color_for(label):
    """A stable, well-spread BGR colour (tuple of 3 ints) for a class index."""
    hue = (label * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.95)
    return int(b * 255), int(g * 255), int(r * 255)


def place_label(box, label_wh, image_wh, placed):
    """Top-left ``(x, y)`` of a ``label_wh`` (w, h) label for ``box`` (x1, y1, x2, y2): above the
    box (inside its top when there is no room), kept inside the ``image_wh`` (w, h) image, and
    moved down past the labels already ``placed`` (a list of (x1, y1, x2, y2), appended to)."""
    (tw, th), (width, height) = label_wh, image_wh
    x = min(max(int(box[0]), 0), max(width - tw, 0))
    y = int(box[1]) - th if int(box[1]) - th >= 0 else max(int(box[1]), 0)
    y = min(y, max(height - th, 0))
    for _ in range(len(placed)):
        hits = [p for p in placed if x < p[2] and p[0] < x + tw and y < p[3] and p[1] < y + th]
        if not hits:
            break
        y = max(p[3] for p in hits)
        if y + th > height:  # no room below: as low as the image allows
            y = max(height - th, 0)
            break
    placed.append((x, y, x + tw, y + th))
    return x, y


def draw_mask(image, mask, color):
    """Blend ``mask`` (H, W) bool into ``image`` (BGR uint8 (H, W, 3), in place) in ``color``
    (``MASK_ALPHA`` of the colour over the pixels) and trace its outline (1 px, the colour)."""
    mask = np.asarray(mask).astype(bool)
    if mask.shape != image.shape[:2]:
        raise ValueError(f"a mask of {mask.shape} for an image of {image.shape[:2]}: masks must "
                         "be in the image's pixels")
    tint = np.asarray(color, np.float32)
    image[mask] = (image[mask] * (1 - MASK_ALPHA) + tint * MASK_ALPHA).astype(np.uint8)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(image, contours, -1, color, 1)
    return image


def vis(image, boxes, scores, labels, class_names=None, conf=0.0, masks=None):
    """Return a copy of ``image`` (BGR uint8 (H, W, 3)) with the detections drawn.

    ``boxes (N, 4)`` x1 y1 x2 y2 in the image's pixels, ``scores (N,)``, ``labels (N,)``;
    detections scoring below ``conf`` are skipped. ``masks (N, H, W)`` bool are blended in
    with their outlines (``draw_mask``).
    Each box is labelled ``"<class name>:<score %>"``; labels stay inside the image and do not
    cover each other (the best detections are placed first, where they would go alone).
    """
    out = np.ascontiguousarray(image).copy()
    boxes, scores, labels = (np.asarray(a) for a in (boxes, scores, labels))
    names = class_names if class_names is not None else []
    font, scale, pad = cv2.FONT_HERSHEY_SIMPLEX, 0.45, 2
    order = [i for i in np.argsort(-scores, kind="stable") if float(scores[i]) >= conf]
    placed, texts = [], {}
    for i in order:
        label = int(labels[i])
        name = names[label] if 0 <= label < len(names) else str(label)
        texts[i] = f"{name}:{float(scores[i]) * 100:.1f}%"
        (tw, th), baseline = cv2.getTextSize(texts[i], font, scale, 1)
        size = (tw + pad, th + baseline + pad)
        texts[i] = (texts[i], place_label(boxes[i], size, out.shape[1::-1], placed), size, th)
    for i in reversed(order):  # best drawn last, on top
        color = color_for(int(labels[i]))
        if masks is not None:
            draw_mask(out, masks[i], color)
        x1, y1, x2, y2 = (int(round(float(v))) for v in boxes[i])
        cv2.rectangle(out, (x1, y1), (x2, y2), color, 2)
        text, (x, y), (w, h), th = texts[i]
        cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), color, -1)
        dark = sum(color) / 3 > 127
        cv2.putText(out, text, (x + 1, y + th + 1), font, scale,
                    (0, 0, 0) if dark else (255, 255, 255), 1, cv2.LINE_AA)
    return out
