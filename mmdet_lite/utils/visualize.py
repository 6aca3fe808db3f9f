"""Draw detections (boxes, class names, scores, optional masks) on a BGR image."""
import colorsys

import cv2
import numpy as np

__all__ = ["vis", "color_for"]


def color_for(label):
    """A stable, well-spread BGR colour (tuple of 3 ints) for a class index."""
    hue = (label * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.95)
    return int(b * 255), int(g * 255), int(r * 255)


def vis(image, boxes, scores, labels, class_names=None, conf=0.0, masks=None):
    """Return a copy of ``image`` (BGR uint8 (H, W, 3)) with the detections drawn.

    ``boxes (N, 4)`` x1 y1 x2 y2 in the image's pixels, ``scores (N,)``, ``labels (N,)``;
    detections scoring below ``conf`` are skipped. ``masks (N, H, W)`` bool are blended in.
    Each box is labelled ``"<class name>:<score %>"``.
    """
    out = np.ascontiguousarray(image).copy()
    boxes, scores, labels = (np.asarray(a) for a in (boxes, scores, labels))
    names = class_names if class_names is not None else []
    for i in np.argsort(scores, kind="stable"):  # best drawn last, on top
        score, label = float(scores[i]), int(labels[i])
        if score < conf:
            continue
        color = color_for(label)
        if masks is not None:
            mask = np.asarray(masks[i]).astype(bool)
            out[mask] = (0.5 * out[mask] + 0.5 * np.asarray(color)).astype(np.uint8)
        x1, y1, x2, y2 = (int(round(float(v))) for v in boxes[i])
        cv2.rectangle(out, (x1, y1), (x2, y2), color, 2)
        name = names[label] if 0 <= label < len(names) else str(label)
        text = f"{name}:{score * 100:.1f}%"
        font = cv2.FONT_HERSHEY_SIMPLEX
        (tw, th), baseline = cv2.getTextSize(text, font, 0.45, 1)
        top = max(y1 - th - baseline - 2, 0)
        cv2.rectangle(out, (x1, top), (x1 + tw + 2, top + th + baseline + 2), color, -1)
        dark = sum(color) / 3 > 127
        cv2.putText(out, text, (x1 + 1, top + th + 1), font, 0.45,
                    (0, 0, 0) if dark else (255, 255, 255), 1, cv2.LINE_AA)
    return out
