"""SOLOv2's loss as ppdet 2.6.0's ``SOLOv2Loss``: dice on the masks, sigmoid focal on the grid."""
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import sigmoid_focal_loss

from .dice import dice_loss

__all__ = ["SOLOv2Loss"]


class SOLOv2Loss(nn.Module):
    """``forward(ins_pred_list, ins_label_list, cate_preds, cate_labels, num_ins)`` ->
    ``(loss_ins, loss_cate)`` float32 scalars, with ppdet's arguments (its ``SOLOv2Head.get_loss``
    builds them from the head outputs and the ``Gt2Solov2Target`` batch entries):

    - ``ins_pred_list``: per level the mask logits (B * M_l, h, w) of the targets' cells (the
      gathered kernels applied to the mask features), or ``None`` for a level without targets;
    - ``ins_label_list``: per level the targets ``ins_label{l}`` (B, M_l, h, w) (any dtype);
    - ``cate_preds``: (N, C) category logits of every cell, images and levels concatenated as
      ppdet flattens them; ``cate_labels``: (N,) int64, 0 background, ``c + 1`` class ``c``;
    - ``num_ins``: the batch's foreground count (sum of ``fg_num``), a number or tensor.

    ``loss_ins`` is ``ins_loss_weight`` times the mean dice loss over targets with a non-empty
    mask (padding and empty targets weigh 0); ``loss_cate`` the summed sigmoid focal loss
    (``gamma``, ``alpha``) divided by ``num_ins + 1``. Both in float32 with autocast off.
    Difference from ppdet: without any non-empty target ``loss_ins`` is 0 (ppdet: 0 / 0).
    """

    def __init__(self, ins_loss_weight=3.0, focal_loss_gamma=2.0, focal_loss_alpha=0.25):
        super().__init__()
        self.ins_loss_weight = float(ins_loss_weight)
        self.focal_loss_gamma = float(focal_loss_gamma)
        self.focal_loss_alpha = float(focal_loss_alpha)

    def instance_loss(self, ins_pred_list, ins_label_list, device=None):
        """The weighted dice term ``loss_ins`` (scalar; 0 on ``device`` without predictions)."""
        losses, total_weight = [], 0.0
        for pred, target in zip(ins_pred_list, ins_label_list):
            if pred is None:
                continue
            pred = pred.float()
            target = target.reshape(-1, *pred.shape[-2:]).to(device=pred.device,
                                                              dtype=torch.float32)
            weights = (target.sum(dim=(1, 2)) > 0).float()
            losses.append(dice_loss(pred.sigmoid(), target) * weights)
            total_weight = total_weight + weights.sum()
        if not losses:
            return torch.zeros((), dtype=torch.float32, device=device)
        return torch.cat(losses).sum() / torch.clamp(total_weight, min=1.0) * self.ins_loss_weight

    def category_loss(self, cate_preds, cate_labels, num_ins):
        """The focal term ``loss_cate`` (scalar)."""
        cate_preds = cate_preds.float()
        num_classes = cate_preds.shape[-1]
        cate_labels = cate_labels.reshape(-1).to(device=cate_preds.device, dtype=torch.int64)
        one_hot = F.one_hot(cate_labels, num_classes + 1)[:, 1:]
        loss = sigmoid_focal_loss(cate_preds, one_hot.to(cate_preds.dtype),
                                  alpha=self.focal_loss_alpha, gamma=self.focal_loss_gamma,
                                  reduction="sum")
        normalizer = torch.as_tensor(num_ins, device=cate_preds.device).float().sum() + 1.0
        return loss / normalizer

    def forward(self, ins_pred_list, ins_label_list, cate_preds, cate_labels, num_ins):
        with torch.autocast(device_type=cate_preds.device.type, enabled=False):
            loss_ins = self.instance_loss(ins_pred_list, ins_label_list, cate_preds.device)
            loss_cate = self.category_loss(cate_preds, cate_labels, num_ins)
        return loss_ins, loss_cate

    def extra_repr(self):
        return (f"ins_loss_weight={self.ins_loss_weight}, focal_loss_gamma="
                f"{self.focal_loss_gamma}, focal_loss_alpha={self.focal_loss_alpha}")
