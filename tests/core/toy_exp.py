"""A tiny detector exp for the trainer tests, independent of every real model family.

Images are dark 32x32 noise with one bright square whose colour channel is its class; the
"detector" is two convolutions, global pooling and two linear heads (class logits, one box).
Its train-mode forward returns ``{"total_loss", "loss_cls", "loss_box"}`` (means over the images,
so a batch split over processes averages to the same loss); eval mode returns
``(scores (N, 1, C), boxes (N, 1, 4))`` and ``postprocess`` gives one detection per image.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

from mmdet_lite.exp import BaseExp
from mmdet_lite.models.post_process.detections import Detections
from mmdet_lite.solver import build_learning_rate, build_sgd
from mmdet_lite.utils.dist import all_gather_object


def make_squares(num_images, size, num_classes, seed):
    """List of dicts ``image`` uint8 (3, S, S), ``box`` float32 (4,) x1y1x2y2, ``label`` int."""
    gen = torch.Generator().manual_seed(seed)
    items = []
    for _ in range(num_images):
        image = torch.randint(0, 60, (3, size, size), generator=gen, dtype=torch.uint8)
        side = int(torch.randint(size // 4, size // 2, (1,), generator=gen))
        x1, y1 = (int(v) for v in torch.randint(0, size - side, (2,), generator=gen))
        label = int(torch.randint(0, num_classes, (1,), generator=gen))
        image[label % 3, y1:y1 + side, x1:x1 + side] = 220
        box = torch.tensor([x1, y1, x1 + side, y1 + side], dtype=torch.float32)
        items.append(dict(image=image, box=box, label=label))
    return items


def collate(items):
    return dict(images=torch.stack([i["image"] for i in items]),
                gt_bboxes=torch.stack([i["box"] for i in items]),
                gt_labels=torch.tensor([i["label"] for i in items], dtype=torch.int64))


class ToyTrainLoader:
    """This rank's batches of a permutation that depends only on (seed, epoch).

    Global batch ``k`` is ``perm[k * B:(k + 1) * B]`` (B = batch per rank * world size), split
    over the ranks, so any number of processes sees the same global batches. Each image is
    flipped horizontally with ``flip_prob``, drawn from torch's global generator.
    """

    def __init__(self, items, batch_size, rank, world_size, seed, flip_prob):
        self.items, self.batch_size = items, batch_size
        self.rank, self.world_size = rank, world_size
        self.seed, self.flip_prob, self.epoch = seed, flip_prob, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return len(self.items) // (self.batch_size * self.world_size)

    def __iter__(self):
        perm = torch.randperm(len(self.items), generator=torch.Generator().manual_seed(
            self.seed * 1000 + self.epoch)).tolist()
        mine = perm[:len(self) * self.batch_size * self.world_size][self.rank::self.world_size]
        for k in range(len(self)):
            batch = [dict(self.items[i])
                     for i in mine[k * self.batch_size:(k + 1) * self.batch_size]]
            flips = torch.rand(len(batch)) < self.flip_prob
            for item, flip in zip(batch, flips.tolist()):
                if flip:
                    size = item["image"].shape[-1]
                    item["image"] = item["image"].flip(-1)
                    x1, y1, x2, y2 = item["box"].tolist()
                    item["box"] = torch.tensor([size - x2, y1, size - x1, y2])
            yield collate(batch)


class ToyDetector(nn.Module):
    """(N, 3, S, S) 0..255 -> class logits (N, C) and one box (N, 4) in pixels."""

    def __init__(self, num_classes, size, use_bn, nan_epoch):
        super().__init__()
        self.size, self.use_bn, self.nan_epoch = size, use_bn, nan_epoch
        self.stem = nn.Conv2d(3, 8, 3, 2, 1, bias=not use_bn)
        self.bn = nn.BatchNorm2d(8) if use_bn else nn.Identity()
        self.conv = nn.Conv2d(8, 16, 3, 2, 1)
        self.cls_head = nn.Linear(16, num_classes)
        self.reg_head = nn.Linear(16, 4)

    def no_weight_decay(self):
        return ["bn.weight", "bn.bias"] if self.use_bn else []

    def forward(self, images, targets=None):
        x = F.relu(self.bn(self.stem(images / 255.0)))
        feat = F.relu(self.conv(x)).mean((2, 3))
        logits, boxes = self.cls_head(feat), self.reg_head(feat).sigmoid() * self.size
        if not self.training:
            return logits.softmax(-1)[:, None], boxes[:, None]
        loss_cls = F.cross_entropy(logits, targets["gt_labels"])
        loss_box = F.l1_loss(boxes / self.size, targets["gt_bboxes"] / self.size)
        total = loss_cls + loss_box
        if 0 <= self.nan_epoch <= targets["epoch_id"]:
            total = total * float("nan")
        return dict(total_loss=total, loss_cls=loss_cls, loss_box=loss_box)

    def postprocess(self, outputs, scale_factors, input_sizes, orig_sizes):
        scores, boxes = outputs
        best, labels = scores[:, 0].max(-1)
        return [Detections(boxes=boxes[i] / scale_factors[i].flip(0).repeat(2),
                           scores=best[i:i + 1], labels=labels[i:i + 1]) for i in range(len(best))]


class ToyEvaluator:
    """"AP" = mean over images of IoU(box, gt) * (label correct); gathered over ranks."""

    def evaluate(self, model, loader, device, fp16=False, distributed=False, output_dir=None):
        model.eval()
        scores = []
        with torch.no_grad():
            for batch in loader:
                images = batch["images"].to(device).float()
                sizes = torch.tensor([images.shape[-2:]] * len(images), device=device)
                dets = model.postprocess(model(images), torch.ones(len(images), 2, device=device),
                                         sizes, sizes)
                for det, box, label in zip(dets, batch["gt_bboxes"], batch["gt_labels"]):
                    b = det.boxes[0].cpu()
                    inter = (torch.minimum(b[2:], box[2:])
                             - torch.maximum(b[:2], box[:2])).clamp(min=0).prod()
                    union = (b[2:] - b[:2]).prod() + (box[2:] - box[:2]).prod() - inter
                    scores.append(float(inter / union) * float(det.labels[0] == label))
        if distributed:
            scores = [s for part in all_gather_object(scores) for s in part]
        ap = sum(scores) / max(len(scores), 1)
        return ap, ap, f"toy AP {ap:.4f}", [ap]


class Exp(BaseExp):
    def __init__(self):
        super().__init__()
        self.num_classes = 3
        self.input_size = (32, 32)
        self.test_size = (32, 32)
        self.max_epoch = 2
        self.print_interval = 2
        self.eval_interval = 1
        self.seed = 7
        self.num_train = 32
        self.num_val = 12
        self.train_batch_size = 4
        self.eval_batch_size = 6
        self.data_num_workers = 0
        self.use_bn = True
        self.flip_prob = 0.5
        self.nan_epoch = -1
        self.base_lr = 0.1
        self.momentum = 0.9
        self.weight_decay = 1e-3
        self.lr_decay = dict(name="CosineDecay", max_epochs=6)
        self.warmup = dict(name="LinearWarmup", steps=3, start_factor=0.1)
        self.use_ema = True
        self.ema_decay = 0.9998
        self.ema_decay_type = "threshold"
        self.snapshot_epoch = 1
        self.clip_grad_norm = None

    def get_model(self):
        return ToyDetector(self.num_classes, self.input_size[0], self.use_bn, self.nan_epoch)

    def get_train_loader(self, batch_size, num_workers, rank=0, world_size=1, seed=0):
        items = make_squares(self.num_train, self.input_size[0], self.num_classes, seed=1)
        return ToyTrainLoader(items, batch_size, rank, world_size, seed, self.flip_prob)

    def get_optimizer(self, model):
        return build_sgd(model, self.base_lr, self.momentum, self.weight_decay)

    def get_lr_scheduler(self, iters_per_epoch, batch_size=None):
        return build_learning_rate(self.base_lr, self.lr_decay, self.warmup, iters_per_epoch)

    def get_eval_loader(self, batch_size, num_workers, rank=0, world_size=1):
        items = make_squares(self.num_val, self.test_size[0], self.num_classes, seed=2)
        shard = Subset(items, list(range(rank, len(items), world_size)))
        return DataLoader(shard, batch_size=batch_size, collate_fn=collate)

    def get_evaluator(self, batch_size, num_workers, rank=0, world_size=1):
        return ToyEvaluator()
