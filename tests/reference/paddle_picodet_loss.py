"""Paddle-side reference for the PicoDet training-loss parity test (never imports torch).

    python paddle_picodet_loss.py CONFIG.yml OUT_DIR

Builds ppdet's PicoDet from CONFIG with random weights and BN statistics (``randomize`` of the
head reference; cls biases near the focal prior), saves them to OUT_DIR/model.pdparams, then runs
one fixed batch (two normalised
320x320 images, GTs padded to 5 slots: 5 real boxes in image 0, one in image 1) through the model
in train mode twice: with ``epoch_id`` 0 (ATSS) and ``epoch_id`` = static_assigner_epoch
(task-aligned assigner). For each phase k it backpropagates the total loss and records
``loss_vfl{k}``, ``loss_bbox{k}``, ``loss_dfl{k}``, ``loss{k}``, the assignment's
``num_pos{k}`` and ``score_sum{k}``, and ``grad{k}/<state-dict key>`` for every parameter.
Saves everything, with ``epoch{k}``, ``image``, ``gt_bboxes``, ``gt_labels`` and ``pad_gt_mask``,
to OUT_DIR/loss.npz.
"""
import os
import sys

import numpy as np
import paddle
from paddle_picodet_head import randomize, run_detector

IMAGE_SHAPE = (2, 3, 320, 320)
NUM_SLOTS = 5


def make_batch(rng, num_classes):
    """Two images: five boxes of 20 to 260 px (two overlapping) and one box; the rest padding."""
    h, w = IMAGE_SHAPE[2:]
    boxes = np.zeros((2, NUM_SLOTS, 4), np.float32)
    labels = np.zeros((2, NUM_SLOTS, 1), np.int64)
    mask = np.zeros((2, NUM_SLOTS, 1), np.float32)
    sizes = [(260, 200), (120, 90), (45, 70), (20, 24), (100, 150)]
    for i, count in enumerate((5, 1)):
        for j in range(count):
            bw, bh = sizes[j] if i == 0 else (80, 60)
            x1, y1 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            boxes[i, j] = (x1, y1, x1 + bw, y1 + bh)
        labels[i, :count, 0] = rng.randint(0, num_classes, count)
        mask[i, :count] = 1.0
    boxes[0, 4] = boxes[0, 1] + np.array([15.3, -10.7, 40.1, 50.9], np.float32)  # overlaps GT 1
    boxes[0, 4] = np.clip(boxes[0, 4], 0, [w, h, w, h])
    image = rng.normal(0.0, 1.0, IMAGE_SHAPE).astype(np.float32)
    return image, labels, boxes, mask


def main(config, out_dir):
    from ppdet.core.workspace import create, load_config

    paddle.set_device("cpu")
    cfg = load_config(config)
    model = create(cfg.architecture)
    model.head.eval_size = None  # the calibration run is 320x320, not the configured size
    randomize(model, run_detector)
    rng = np.random.RandomState(7)
    for conv in model.head.head_cls_list:  # near the focal prior, as at the start of training
        conv.bias.set_value(rng.uniform(-5.0, -4.0, conv.bias.shape).astype(np.float32))
    paddle.save(model.state_dict(), os.path.join(out_dir, "model.pdparams"))

    head = model.head
    assigned = {}

    def keep_assignment(layer, inputs, outputs):
        labels, scores = outputs[0], outputs[2]
        assigned["num_pos"] = int(((labels >= 0) & (labels < head.num_classes)).sum())
        assigned["score_sum"] = float(scores.sum())

    for assigner in (head.static_assigner, head.assigner):
        assigner.register_forward_post_hook(keep_assignment)

    image, labels, boxes, mask = make_batch(rng, head.num_classes)
    out = dict(image=image, gt_labels=labels, gt_bboxes=boxes, pad_gt_mask=mask)
    params = {id(p): p for p in model.parameters()}
    param_keys = {k: v for k, v in model.state_dict().items() if id(v) in params}
    model.train()
    for k, epoch in enumerate((0, head.static_assigner_epoch)):
        model.clear_gradients()
        inputs = {"image": paddle.to_tensor(image), "gt_class": paddle.to_tensor(labels),
                  "gt_bbox": paddle.to_tensor(boxes), "pad_gt_mask": paddle.to_tensor(mask),
                  "im_id": paddle.to_tensor(np.arange(2, dtype=np.int64)[:, None]),
                  "epoch_id": epoch}
        losses = model(inputs)
        losses["loss"].backward()
        out[f"epoch{k}"] = np.array(epoch)
        for name in ("loss_vfl", "loss_bbox", "loss_dfl", "loss"):
            out[f"{name}{k}"] = losses[name].numpy().reshape(())
        out[f"num_pos{k}"] = np.array(assigned["num_pos"])
        out[f"score_sum{k}"] = np.array(assigned["score_sum"], np.float32)
        for key, param in param_keys.items():
            if param.grad is not None:
                out[f"grad{k}/{key}"] = param.grad.numpy()
    np.savez(os.path.join(out_dir, "loss.npz"), **out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
