"""mmdet 3.3.0's RTMDet assignment, losses and their gradients on given raw head outputs.

Usage: python mmdet_rtmdet_loss.py IN.npz OUT.npz (run through tests/conftest.py::run_mmdet).
IN.npz: ``cls_<l>`` (N, C, H, W) logits and ``reg_<l>`` (N, 4, H, W) l,t,r,b pixel distances per
level, ``gt_bboxes`` (N, M, 4), ``gt_labels`` (N, M, 1), ``pad_gt_mask`` (N, M, 1), ``strides``,
``image_hw``. OUT.npz: per image ``gt_inds_<i>``, ``labels_<i>``, ``max_overlaps_<i>`` of
``DynamicSoftLabelAssigner.assign``, ``loss_cls``, ``loss_bbox`` (summed over levels as mmdet's
``parse_losses`` does) and the gradients ``grad_cls_<l>``, ``grad_reg_<l>`` of their sum.
Never imports mmdet_lite.
"""
import mmdet_stubs  # noqa: F401  (before mmdet)

# isort: split
import sys

import numpy as np
import torch
from mmdet.models.dense_heads import RTMDetSepBNHead
from mmdet.models.task_modules.assigners import DynamicSoftLabelAssigner
from mmdet.structures.bbox import distance2bbox
from mmengine.structures import InstanceData


def main(in_path, out_path):
    data = dict(np.load(in_path))
    strides = [int(s) for s in data["strides"]]
    height, width = (int(v) for v in data["image_hw"])
    cls_scores = [torch.tensor(data[f"cls_{i}"], requires_grad=True) for i in range(len(strides))]
    bbox_preds = [torch.tensor(data[f"reg_{i}"], requires_grad=True) for i in range(len(strides))]
    num_images, num_classes = cls_scores[0].shape[:2]
    gts = []
    for i in range(num_images):
        keep = data["pad_gt_mask"][i, :, 0] > 0
        gts.append(InstanceData(bboxes=torch.tensor(data["gt_bboxes"][i][keep]),
                                labels=torch.tensor(data["gt_labels"][i, :, 0][keep])))
    metas = [dict(img_shape=(height, width), pad_shape=(height, width),
                  batch_input_shape=(height, width)) for _ in range(num_images)]
    head = RTMDetSepBNHead(
        num_classes=int(num_classes), in_channels=8, feat_channels=8, stacked_convs=1,
        anchor_generator=dict(type="MlvlPointGenerator", offset=0, strides=strides),
        bbox_coder=dict(type="DistancePointBBoxCoder"),
        loss_cls=dict(type="QualityFocalLoss", use_sigmoid=True, beta=2.0, loss_weight=1.0),
        loss_bbox=dict(type="GIoULoss", loss_weight=2.0), with_objectness=False,
        exp_on_reg=False, share_conv=True, pred_kernel_size=1,
        train_cfg=dict(assigner=dict(type="DynamicSoftLabelAssigner", topk=13),
                       allowed_border=-1, pos_weight=-1, debug=False))
    out = {}
    # the assigner alone, per image, on the inputs loss_by_feat gives it
    priors = torch.cat(head.prior_generator.grid_priors([s.shape[-2:] for s in cls_scores],
                                                         device="cpu", with_stride=True))
    flat_cls = torch.cat([s.detach().permute(0, 2, 3, 1).reshape(num_images, -1, num_classes)
                          for s in cls_scores], 1)
    flat_reg = torch.cat([b.detach().permute(0, 2, 3, 1).reshape(num_images, -1, 4)
                          for b in bbox_preds], 1)
    decoded = distance2bbox(priors[:, :2], flat_reg)
    assigner = DynamicSoftLabelAssigner(topk=13)
    for i in range(num_images):
        result = assigner.assign(InstanceData(scores=flat_cls[i], bboxes=decoded[i],
                                              priors=priors), gts[i])
        out[f"gt_inds_{i}"] = result.gt_inds.numpy()
        out[f"labels_{i}"] = result.labels.numpy()
        out[f"max_overlaps_{i}"] = result.max_overlaps.numpy()
    out["priors"] = priors.numpy()

    losses = head.loss_by_feat(cls_scores, bbox_preds, gts, metas)
    loss_cls, loss_bbox = sum(losses["loss_cls"]), sum(losses["loss_bbox"])
    (loss_cls + loss_bbox).backward()
    out["loss_cls"], out["loss_bbox"] = loss_cls.detach().numpy(), loss_bbox.detach().numpy()
    for i, (c, b) in enumerate(zip(cls_scores, bbox_preds)):
        out[f"grad_cls_{i}"], out[f"grad_reg_{i}"] = c.grad.numpy(), b.grad.numpy()
    np.savez(out_path, **out)


if __name__ == "__main__":
    main(*sys.argv[1:3])
