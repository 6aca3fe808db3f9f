"""The family-neutral divergence checks: loss terms, NaN predictions that make a loss raise, and
the non-finite tensors of a checkpoint dict."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmdet_lite.core.divergence import forward_losses, nonfinite_loss, nonfinite_tensors


class _BceDetector(nn.Module):
    """``(images (B, 4), targets (B, 2)) -> dict(total_loss, loss_cls)`` through a BCE on sigmoid
    probabilities, which raises on NaN inputs."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(4, 4)
        self.cls = nn.Linear(4, 2)

    def forward(self, images, targets):
        prob = self.cls(self.body(images)).sigmoid()
        loss = F.binary_cross_entropy(prob, targets)
        return dict(total_loss=loss, loss_cls=loss)


def test_each_loss_term_is_checked():
    one = torch.tensor(1.0)
    assert nonfinite_loss(dict(total_loss=one, loss_a=one)) is None
    assert nonfinite_loss(dict(total_loss=torch.tensor(math.nan))) == "loss is nan"
    assert nonfinite_loss(dict(total_loss=one, loss_a=one, loss_b=torch.tensor(math.inf))) == \
        "loss term loss_b is inf"


def test_nan_predictions_that_make_a_loss_raise_are_a_divergence():
    model, images, targets = _BceDetector(), torch.ones(3, 4), torch.zeros(3, 2)
    losses, problem = forward_losses(model, model, images, targets)
    assert problem is None and torch.isfinite(losses["total_loss"])
    with torch.no_grad():
        model.body.weight[0, 0] = math.nan
    losses, problem = forward_losses(model, model, images, targets)
    assert losses is None
    assert problem.startswith("the predictions are not finite (NaN from body on; the loss raised "
                              "RuntimeError: all elements of input should be between 0 and 1")
    with torch.no_grad():
        model.body.weight[0, 0] = 0.0
    with pytest.raises(RuntimeError, match="between 0 and 1"):  # a finite model's own error stays
        forward_losses(model, model, images, targets + 2)
    _, problem = forward_losses(model, model, images * math.inf, targets)
    assert problem.startswith("the predictions are not finite (NaN from the input on")


def test_nonfinite_tensors_of_a_checkpoint_are_named():
    bn = nn.BatchNorm1d(3)
    bn.running_var[1] = math.inf
    ckpt = dict(model=bn.state_dict(), ema=dict(shadow=dict(w=torch.tensor([math.nan]))),
                rng=[torch.arange(3)], epoch=2, optimizer=None)
    assert nonfinite_tensors(ckpt) == ["model.running_var", "ema.shadow.w"]
    assert nonfinite_tensors(dict(model=nn.Linear(2, 2).state_dict())) == []
