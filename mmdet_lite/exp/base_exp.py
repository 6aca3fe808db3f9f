"""The experiment base class: plain fields, ``KEY VALUE`` overrides, a table for logs."""
import copyreg
import functools
import inspect
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

from tabulate import tabulate

from mmdet_lite.utils.errors import UserError

from .exp_file import EXP_FILE_ATTR, rebuild_exp
from .overrides import apply_overrides

if TYPE_CHECKING:  # annotations only: the builders import these lazily
    import torch

    from mmdet_lite.data.coco import COCODataset
    from mmdet_lite.data.train_loader import TrainLoader
    from mmdet_lite.evaluators.coco_evaluator import COCOEvaluator

__all__ = ["BaseExp"]


def _flatten(fields, prefix=""):
    rows = []
    for name, value in fields.items():
        if isinstance(value, dict) and value:
            rows.extend(_flatten(value, prefix=f"{prefix}{name}."))
        else:
            rows.append((f"{prefix}{name}", repr(value)))
    return rows


def _default_name(cls):
    try:
        return Path(inspect.getfile(cls)).stem
    except (TypeError, OSError):  # defined interactively: no file
        return cls.__name__


class BaseExp:
    """An experiment: every setting of a model, its data and its schedule as plain attributes.

    Fields every exp has: ``num_classes``, ``data_dir``, ``train_ann`` / ``val_ann`` (COCO json,
    relative to ``data_dir`` or absolute), ``train_image_folder`` / ``val_image_folder``,
    ``input_size`` (train ``(h, w)``), ``test_size`` (``(h, w)``), ``max_epoch``, ``output_dir``,
    ``print_interval`` (iterations), ``eval_interval`` (epochs), ``seed`` (None: not seeded) and
    ``exp_name`` (the exp file's stem). Fields the trainer and the tools read, declared here with
    their defaults so that a ``KEY VALUE`` override of any of them works for every exp:
    ``class_names`` (None: from ``val_ann``'s categories), ``train_batch_size`` /
    ``eval_batch_size`` (images per device), ``data_num_workers`` (loader workers per process),
    ``snapshot_epoch`` (``epoch_<N>.pth`` every N epochs), ``use_ema``, ``ema_decay``,
    ``ema_decay_type``, ``ema_cycle_epoch``, ``ema_black_list``, ``ema_filter_no_grad`` (see
    ``ModelEMA``), ``clip_grad_norm`` (global gradient-norm clip, None: off),
    ``find_unused_parameters`` (DDP) and ``sync_bn``. Families add their model sub-configs as
    dicts and their schedule fields.

    Every public attribute is a field: ``merge(["head.nms.keep_top_k", "50", ...])`` overrides it
    (nested keys reach into dict fields), ``fields()`` lists them and ``repr(exp)`` prints them as a
    table, one row per overridable key.

    Derived values are never copied at ``__init__``: whatever depends on another field is computed
    where it is used, so an override reaches everything built afterwards. ``get_test_transform()``
    and the model read ``test_size`` when they are built; a family computes dependent channel
    counts (e.g. PicoDet's head from ``neck.out_channels``) in ``get_model()``; ``save_dir`` is a
    property of ``output_dir`` and ``exp_name``. Subclasses keep to this rule: set only
    independent values in ``__init__`` (no ``self.b = f(self.a)``), and mark a derived-by-default
    field with ``None``.
    """

    def __init__(self):
        self.exp_name = _default_name(type(self))
        self.num_classes = 80
        self.data_dir = "datasets/coco"
        self.train_ann = "annotations/instances_train2017.json"
        self.val_ann = "annotations/instances_val2017.json"
        self.train_image_folder = "train2017"
        self.val_image_folder = "val2017"
        self.input_size = (640, 640)
        self.test_size = (640, 640)
        self.max_epoch = 300
        self.output_dir = "./outputs"
        self.experiment_name = None  # the run folder under output_dir; None: exp_name
        self.print_interval = 20
        self.eval_interval = 10
        self.seed = None
        self.train_transforms = {}  # ppdet's sample_transforms after Decode: {name: kwargs}
        self.train_sizes = [640]  # BatchRandomResize target sizes (random per batch)
        self.mosaic_epoch = -1  # ppdet's TrainReader.mosaic_epoch: -1 never stops Mosaic
        # ---------------- read by the trainer and the tools (see the class docstring) ----------
        self.class_names = None
        self.train_batch_size = 8
        self.eval_batch_size = 8
        self.data_num_workers = 4
        self.skip_bad_images = False  # True: an unreadable training image is skipped, warned of
        self.snapshot_epoch = 1
        self.use_ema = False
        self.ema_decay = 0.9998
        self.ema_decay_type = "threshold"
        self.ema_cycle_epoch = -1
        self.ema_black_list = None
        self.ema_filter_no_grad = False
        self.clip_grad_norm = None
        self.find_unused_parameters = False
        self.sync_bn = False

    # ------------------------------------------------------------------ fields
    def fields(self) -> Dict[str, Any]:
        """The exp's fields: ``{name: value}`` of every public attribute (values are live)."""
        return {name: value for name, value in vars(self).items() if not name.startswith("_")}

    def set_fields(self, **fields: Any) -> None:
        """Set existing fields by name (e.g. a preset of ``mmdet_lite.exp.datasets``)."""
        unknown = sorted(set(fields) - set(self.fields()))
        if unknown:
            raise AttributeError(f"{type(self).__name__} has no field(s) {', '.join(unknown)}")
        for name, value in fields.items():
            setattr(self, name, value)

    def merge(self, opts: Sequence[str]) -> None:
        """Apply trailing ``KEY VALUE`` pairs (see ``mmdet_lite.exp.overrides``);
        ``UserError`` if bad."""
        apply_overrides(self, opts)

    @property
    def save_dir(self) -> str:
        """``<output_dir>/<experiment_name or exp_name>``: checkpoints, logs and detection files
        of this exp (``tools/train.py`` sets ``experiment_name`` to the run's own folder)."""
        return os.path.join(self.output_dir, self.experiment_name or self.exp_name)

    def table(self) -> str:
        """The fields as a two-column table, nested dicts flattened to their override keys."""
        return tabulate(_flatten(self.fields()), headers=["key", "value"], tablefmt="github")

    def __repr__(self):
        return f"{type(self).__name__} '{self.exp_name}'\n{self.table()}"

    def __reduce__(self):
        # An exp loaded from a file lives in a module no other process can import by name:
        # pickle it as "load that file again, then restore the fields" (spawned workers need this).
        module = sys.modules.get(type(self).__module__)
        exp_file = getattr(module, EXP_FILE_ATTR, None)
        if exp_file is not None:
            return rebuild_exp, (exp_file, type(self).__qualname__, dict(vars(self)))
        return copyreg.__newobj__, (type(self),), dict(vars(self))

    # ------------------------------------------------------------------ family constants
    train_box_format = "xyxy"
    """``gt_bboxes`` of the training batches: ``xyxy`` pixels or ``cxcywh`` normalised (DETR)."""
    train_with_masks = False
    """Whether the training batches carry instance masks (``gt_masks``)."""
    transform_aliases = ()
    """``(config name, registered name)`` pairs: the family's ppdet version of a transform."""
    convert_source_kinds = ("pdparams",)
    """The weight files ``tools/convert_weights.py`` converts for this exp (``checkpoint_kind``:
    ``"pdparams"`` Paddle, ``"torch"`` a PyTorch ``.pth`` of another code base)."""

    # ------------------------------------------------------------------ post-processing
    def get_score_threshold(self) -> Optional[float]:
        """The score below which the model's post-processing drops detections (a float), or None
        when it has no such threshold (the base: no NMS)."""
        return None

    def set_score_threshold(self, value: float) -> None:
        """Set the post-processing's score threshold (``--conf``) in the family's own config
        layout; ``UserError`` when it has none (the base)."""
        raise UserError(f"{self.exp_name} has no score threshold to set (its post-processing "
                        "has no NMS)")

    def set_nms_threshold(self, value: float) -> None:
        """Set the NMS IoU threshold (``--nms``) in the family's own config layout;
        ``UserError`` when the post-processing has no NMS (the base)."""
        raise UserError(f"{self.exp_name} has no NMS IoU threshold to set (its post-processing "
                        "has no NMS)")

    # ------------------------------------------------------------------ builders
    def get_model(self) -> "torch.nn.Module":
        """The detector (``nn.Module``) described by this exp."""
        raise NotImplementedError

    @property
    def convert_rules(self):
        """The family's rule table for ``mmdet_lite.convert`` (Paddle name -> our name)."""
        raise NotImplementedError

    def sample_transforms(self) -> List[Any]:
        """``train_transforms`` as transform objects (``mmdet_lite.data.build``), in order."""
        from mmdet_lite.data.build import build_sample_transforms

        return build_sample_transforms(self.train_transforms, self.exp_name,
                                       dict(self.transform_aliases))

    def get_train_dataset(self):
        """The COCO-format training set (``train_ann`` / ``train_image_folder``)."""
        from mmdet_lite.data.coco import COCODataset

        dataset = COCODataset(self.data_dir, self.train_ann, self.train_image_folder)
        dataset.check_num_classes(self.num_classes)
        self._check_masks(dataset)
        return dataset

    def _check_masks(self, dataset):
        """A mask exp's ground truth must give every instance a mask (``UserError`` if not)."""
        if self.train_with_masks:
            from mmdet_lite.data.mask_annotations import check_mask_annotations

            check_mask_annotations(dataset, self.exp_name)

    def get_train_loader(self, batch_size: int, num_workers: int, rank: int = 0,
                         world_size: int = 1, seed: int = 0) -> "TrainLoader":
        """The family's TrainReader over the training set; ``batch_size`` is per process.

        Batches (``mmdet_lite.data.collate.TrainCollate``): ``images`` uint8 (B, 3, S_h, S_w) RGB,
        ``gt_bboxes`` (B, n, 4) in ``train_box_format``, ``gt_labels`` (B, n, 1),
        ``pad_gt_mask`` (B, n, 1), ``gt_masks`` (B, n, S_h, S_w) with ``train_with_masks``,
        ``image_ids``.
        """
        from mmdet_lite.data.train_loader import build_train_loader

        return build_train_loader(self.get_train_dataset(), batch_size, num_workers, seed,
                                  rank=rank, world_size=world_size, target_sizes=self.train_sizes,
                                  sample_transforms=self.sample_transforms(),
                                  mosaic_epoch=self.mosaic_epoch,
                                  box_format=self.train_box_format,
                                  with_masks=self.train_with_masks,
                                  skip_unreadable=self.skip_bad_images)

    def get_test_transform(self):
        """Callable BGR uint8 (H, W, 3) -> (uint8 (3, h, w), float32 scale factor (2,)): the
        resize of ppdet's EvalReader to ``test_size``."""
        from mmdet_lite.data.geometric import TestTransform

        return TestTransform(tuple(self.test_size))

    def get_eval_dataset(self, image_folder: Optional[str] = None,
                         ann: Optional[str] = None) -> "COCODataset":
        """COCO-format evaluation set (``val_ann`` / ``val_image_folder`` unless given)."""
        from mmdet_lite.data.coco import COCODataset

        dataset = COCODataset(self.data_dir, ann or self.val_ann,
                              image_folder or self.val_image_folder,
                              transform=self.get_test_transform())
        dataset.check_num_classes(self.num_classes)
        return dataset

    def get_eval_collate(self) -> Any:
        """The eval batch function: ``eval_collate`` (``mmdet_lite.data.loader``), uint8 images
        padded with zeros to a multiple of 32."""
        from mmdet_lite.data.loader import eval_collate

        return functools.partial(eval_collate, pad_to_stride=32)

    def get_eval_loader(self, batch_size: int, num_workers: int, rank: int = 0,
                        world_size: int = 1) -> "torch.utils.data.DataLoader":
        """Evaluation loader over this process's shard; batches of ``get_eval_collate()``:
        ``images`` (B, 3, H, W) padded to a multiple of 32, ``scale_factors`` (B, 2),
        ``image_ids``, ``orig_sizes`` (B, 2), ``input_sizes`` (B, 2)."""
        from mmdet_lite.data.loader import build_eval_loader

        return build_eval_loader(self.get_eval_dataset(), batch_size, num_workers,
                                 rank=rank, world_size=world_size,
                                 collate_fn=self.get_eval_collate())

    def get_evaluator(self, batch_size: Optional[int] = None, num_workers: Optional[int] = None,
                      rank: int = 0, world_size: int = 1) -> "COCOEvaluator":
        """A ``COCOEvaluator`` on the evaluation set (the loader args are accepted for symmetry
        with ``get_eval_loader``; the evaluator only needs the ground truth)."""
        from mmdet_lite.evaluators.coco_evaluator import COCOEvaluator

        dataset = self.get_eval_dataset()
        self._check_masks(dataset)
        return COCOEvaluator(dataset)
