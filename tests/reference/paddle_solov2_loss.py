"""Paddle-side reference for the SOLOv2 loss test: ppdet 2.6.0's ``SOLOv2Loss`` and its gradients.

Runs under the Paddle interpreter only (never imports torch):

    python paddle_solov2_loss.py IN.npz OUT.npz

``IN.npz`` holds, per level ``l`` < ``num_levels``, ``ins_label<l>`` (B, M_l, h, w) uint8 and,
where the level has targets, ``ins_pred<l>`` (B * M_l, h, w) float32 mask logits (a level without
one is passed as ``None``, as ``SOLOv2Head.get_loss`` does); ``cate_preds`` (N, C) float32,
``cate_labels`` (N,) int64 and ``fg_num`` (B,) int64. The loss is called as ``get_loss`` calls
it (``num_ins = paddle.sum(fg_num)``). Writes ``loss_ins``, ``loss_cate`` and the gradients of
their sum: ``grad_ins_pred<l>`` and ``grad_cate_preds``.
"""
import contextlib
import io
import sys

import numpy as np
import paddle

with contextlib.redirect_stdout(io.StringIO()):  # ppdet prints warnings on import
    from ppdet.modeling.losses import SOLOv2Loss


def main(src, dst):
    paddle.set_device("cpu")
    data = np.load(src)
    ins_preds, ins_labels = [], []
    for level in range(int(data["num_levels"])):
        ins_labels.append(paddle.to_tensor(data[f"ins_label{level}"]))
        pred = None
        if f"ins_pred{level}" in data:
            pred = paddle.to_tensor(data[f"ins_pred{level}"], stop_gradient=False)
        ins_preds.append(pred)
    cate_preds = paddle.to_tensor(data["cate_preds"], stop_gradient=False)
    num_ins = paddle.sum(paddle.to_tensor(data["fg_num"]))
    loss_ins, loss_cate = SOLOv2Loss()(ins_preds, ins_labels, cate_preds,
                                       paddle.to_tensor(data["cate_labels"]), num_ins)
    (loss_ins + loss_cate).backward()
    out = dict(loss_ins=loss_ins.numpy(), loss_cate=loss_cate.numpy(),
               grad_cate_preds=cate_preds.grad.numpy())
    for level, pred in enumerate(ins_preds):
        if pred is not None:
            out[f"grad_ins_pred{level}"] = pred.grad.numpy()
    np.savez(dst, **out)


if __name__ == "__main__":
    main(*sys.argv[1:])
