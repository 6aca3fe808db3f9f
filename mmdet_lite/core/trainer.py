"""The training loop shared by every model family (YOLOX-style ``Trainer``).

``Trainer(exp, args).train()`` runs in every process that ``mmdet_lite.core.launch`` starts (the
process group, if any, is already initialised). What it needs from the exp is listed in
``Trainer``'s docstring; ``args`` carries the command-line flags of ``tools/train.py``.
"""
import copy
import os
import sys
import time

import torch
import torch.distributed as dist
from loguru import logger
from torch.nn.parallel import DistributedDataParallel

from mmdet_lite.core import divergence
from mmdet_lite.core.class_names import exp_class_names
from mmdet_lite.core.ema import ModelEMA
from mmdet_lite.core.resume import restore_training_state
from mmdet_lite.core.train_log import TrainMeters, eta
from mmdet_lite.data.train_loader import batch_to_device
from mmdet_lite.utils import checkpoint as ckpt_io
from mmdet_lite.utils import dist as dist_utils
from mmdet_lite.utils.device import preferred_memory_format, select_device
from mmdet_lite.utils.errors import UserError
from mmdet_lite.utils.logger import setup_logger
from mmdet_lite.utils.rng import get_rng_state, run_seed, seed_everything, set_rng_state

__all__ = ["Trainer", "TrainingDiverged", "run_training"]

_DEFAULT_ARGS = dict(device="cpu", batch_size=None, eval_batch_size=None, workers=None,
                     eval_workers=None, ckpt=None, resume=False, fp16=False, sync_bn=False)


class TrainingDiverged(UserError):
    """The loss became NaN or infinite: training stops, the last good checkpoint is kept."""


def run_training(exp, args):
    """Per-process entry point for ``launch``: train ``exp`` with the flags in ``args``."""
    return Trainer(exp, args).train()


class Trainer:
    """Train ``exp``'s detector: epochs of SGD steps, EMA, periodic evaluation and checkpoints.

    The exp provides ``get_model()`` (train-mode ``model(images float (B, 3, H, W) 0..255,
    targets dict) -> dict of losses with "total_loss"``), ``get_train_loader(batch_size,
    num_workers, rank, world_size, seed)`` (batches are dicts with ``images`` uint8 (B, 3, H, W)
    plus the targets; ``set_epoch(epoch)`` on the loader or its sampler), ``get_optimizer(model)``,
    ``get_lr_scheduler(iters_per_epoch, batch_size)`` (an object with ``step(optimizer, iteration)
    -> lr``, ``state_dict()``, ``load_state_dict(state)``), ``get_eval_loader(batch_size,
    num_workers, rank, world_size)`` and ``get_evaluator(batch_size, num_workers, rank,
    world_size)``, and the fields ``max_epoch``, ``print_interval``, ``eval_interval``, ``seed``,
    ``exp_name``, ``save_dir``, ``train_batch_size``, ``eval_batch_size``, ``snapshot_epoch``,
    ``use_ema``, ``ema_decay``, ``ema_decay_type``, ``ema_cycle_epoch``, ``ema_black_list``,
    ``ema_filter_no_grad``, ``clip_grad_norm``, ``find_unused_parameters``, ``sync_bn`` and
    ``data_num_workers`` (``BaseExp`` declares them all, with their defaults).

    Checkpoints (``<save_dir>/latest_ckpt.pth`` every epoch, ``best_ckpt.pth`` by AP,
    ``epoch_<N>.pth`` every ``snapshot_epoch``) hold ``model`` (the weights to use: EMA-averaged
    when EMA is on), ``train_model`` (the raw training weights), ``ema``, ``optimizer``,
    ``scheduler``, ``scaler``, ``epoch`` (completed), ``iteration``, ``best_ap``, ``seed``, ``rng``
    (per rank), ``exp_name``, ``num_classes`` and ``class_names``; none is written when one of
    their tensors is not finite (``TrainingDiverged``; the previous files stay).
    """

    def __init__(self, exp, args):
        self.exp = exp
        self.args = args
        self.rank, self.world_size = dist_utils.get_rank(), dist_utils.get_world_size()
        self.local_rank = dist_utils.get_local_rank()
        self.device = select_device(self._arg("device"), self.local_rank)
        self.fp16 = bool(self._arg("fp16")) and self.device.type == "cuda"
        self.max_epoch = int(exp.max_epoch)
        self.save_dir = exp.save_dir
        self.batch_size = self._total_batch(self._arg("batch_size"), exp.train_batch_size, "-b")
        self.eval_batch_size = self._total_batch(self._arg("eval_batch_size"), exp.eval_batch_size,
                                                 "-eb")
        self.start_epoch, self.epoch, self.iter = 0, 0, 0
        self.best_ap = -1.0
        self.load_report = None
        self.writer = None
        self.ema = None

    # ------------------------------------------------------------------ helpers
    def _arg(self, name):
        return getattr(self.args, name, _DEFAULT_ARGS[name])

    def _total_batch(self, given, per_device, flag):
        total = int(given) if given is not None else int(per_device) * self.world_size
        if total < self.world_size or total % self.world_size:
            raise UserError(f"{flag} {total}: the total batch must be a positive multiple of the "
                            f"number of processes ({self.world_size})")
        return total

    @property
    def memory_format(self):
        return preferred_memory_format(self.device)

    @property
    def is_main(self):
        return self.rank == 0

    @property
    def progress_iter(self):
        return self.epoch * self.iters_per_epoch + self.iter

    # ------------------------------------------------------------------ main loop
    def train(self):
        """Run ``before_train``, the epochs, ``after_train``. Returns the best AP."""
        self.before_train()
        try:
            for self.epoch in range(self.start_epoch, self.max_epoch):
                self.before_epoch()
                self.train_in_iter()
                self.after_epoch()
        except KeyboardInterrupt:
            # a Ctrl-C while a loader iterator starts its workers leaves it half-made; torch's
            # __del__ then fails on it ("Exception ignored in ..."): the process is ending anyway
            sys.unraisablehook = lambda unraisable: None
            if self.is_main:
                kept = divergence.last_good_checkpoint(self.save_dir)
                logger.warning(f"interrupted at epoch {self.epoch + 1}/{self.max_epoch}: {kept}; "
                               "--resume continues from it")
            raise
        finally:
            if self.writer is not None:
                self.writer.close()
        self.after_train()
        return self.best_ap

    def before_train(self):
        setup_logger(self.save_dir, self.rank, filename="train_log.txt", mode="a")
        if self.is_main:
            for path in ckpt_io.remove_stale_temporaries(self.save_dir):
                logger.warning(f"removed {path}, left by an interrupted checkpoint write")
        logger.info(f"args: {vars(self.args) if hasattr(self.args, '__dict__') else self.args}")
        logger.info(f"exp:\n{self.exp}")
        if self._arg("fp16") and not self.fp16:
            logger.warning("--fp16 needs a GPU; training in float32")
        resume, ckpt_path = self._arg("resume"), self._arg("ckpt")
        if resume and ckpt_path is None:
            ckpt_path = os.path.join(self.save_dir, "latest_ckpt.pth")
        ckpt = ckpt_io.read_checkpoint(ckpt_path) if resume else None
        self.seed = run_seed(None if ckpt is None else ckpt.get("seed"), self.exp.seed)
        seed_everything(self.seed + self.rank)

        self.raw_model = self._build_model(None if resume else ckpt_path)
        self.optimizer = self.exp.get_optimizer(self.raw_model)
        self._build_train_loader()
        self.lr_scheduler = self.exp.get_lr_scheduler(self.iters_per_epoch, self.batch_size)
        if self.exp.use_ema:
            self.ema = ModelEMA(self.raw_model, decay=self.exp.ema_decay,
                                decay_type=self.exp.ema_decay_type,
                                cycle_epoch=self.exp.ema_cycle_epoch,
                                black_list=self.exp.ema_black_list,
                                filter_no_grad=self.exp.ema_filter_no_grad)
        # ppdet's paddle.amp.GradScaler(init_loss_scaling=1024); the other defaults equal torch's.
        self.scaler = torch.amp.GradScaler(self.device.type, init_scale=1024.0, enabled=self.fp16)
        rng = restore_training_state(self, ckpt, ckpt_path) if resume else None

        self._build_eval()
        self.model = self.raw_model
        if self.world_size > 1:
            device_ids = [self.local_rank] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(
                self.raw_model, device_ids=device_ids,
                find_unused_parameters=self.exp.find_unused_parameters)
        if self.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(os.path.join(self.save_dir, "tensorboard"))
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        if rng is not None:
            set_rng_state(rng)
        self.meters = TrainMeters()
        logger.info(f"training from epoch {self.start_epoch + 1} to {self.max_epoch}: "
                    f"{self.iters_per_epoch} iterations per epoch, total batch {self.batch_size} "
                    f"on {self.world_size} process(es), {self.device.type}"
                    f"{', fp16' if self.fp16 else ''}, seed {self.seed}")

    def _build_model(self, init_ckpt):
        model = self.exp.get_model()
        if (self._arg("sync_bn") or self.exp.sync_bn) and self.world_size > 1:
            if self.device.type == "cuda":
                model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            else:
                logger.warning("SyncBN needs GPUs; keeping per-process BatchNorm on CPU")
        model.to(self.device, memory_format=self.memory_format)
        if init_ckpt is not None:
            self.load_report = ckpt_io.load_weights(model, init_ckpt, strict=False)
            if not self.load_report.loaded:
                raise UserError(f"-c {init_ckpt}: no tensor of the checkpoint fits the model "
                                f"({self.load_report.summary()})")
            logger.info(f"initialised the model from {init_ckpt}: "
                        f"{len(self.load_report.loaded)} tensors loaded")
            for what, names in self.load_report.details():
                logger.warning(f"{len(names)} {what}:\n" + "\n".join(f"  {k}" for k in names))
        logger.info(f"model: {sum(p.numel() for p in model.parameters()) / 1e6:.3f} M parameters")
        return model

    def _num_workers(self, evaluation=False):
        workers = self._arg("workers")
        workers = self.exp.data_num_workers if workers is None else workers
        eval_workers = self._arg("eval_workers") if evaluation else None
        return workers if eval_workers is None else eval_workers

    def _build_train_loader(self):
        per_device = self.batch_size // self.world_size
        self.train_loader = self.exp.get_train_loader(
            batch_size=per_device, num_workers=self._num_workers(),
            rank=self.rank, world_size=self.world_size, seed=self.seed)
        self.iters_per_epoch = len(self.train_loader)
        if self.iters_per_epoch < 1:
            raise UserError(f"the training set gives no full batch of {per_device} images per "
                            "process: use a smaller -b")

    def _build_eval(self):
        workers = self._num_workers(evaluation=True)
        per_device = self.eval_batch_size // self.world_size
        self.eval_loader = self.exp.get_eval_loader(per_device, workers, rank=self.rank,
                                                    world_size=self.world_size)
        self.evaluator = self.exp.get_evaluator(per_device, workers, rank=self.rank,
                                                world_size=self.world_size)
        self.eval_model = copy.deepcopy(self.raw_model).requires_grad_(False)

    def before_epoch(self):
        for obj in (self.train_loader, getattr(self.train_loader, "batch_sampler", None),
                    getattr(self.train_loader, "sampler", None)):
            if hasattr(obj, "set_epoch"):
                obj.set_epoch(self.epoch)
                break
        self.model.train()

    def train_in_iter(self):
        tic = time.perf_counter()
        interval = max(1, self.exp.print_interval)
        for self.iter, batch in enumerate(self.train_loader):
            data_time = time.perf_counter() - tic
            losses, lr = self.train_one_iter(batch)
            self.meters.add(losses, lr, data_time, time.perf_counter() - tic,
                            len(batch["images"]), batch.get("skipped", ()))
            if (self.iter + 1) % interval == 0 or self.iter + 1 == self.iters_per_epoch:
                self.log_progress(batch["images"].shape[-2:], interval)
            tic = time.perf_counter()

    def train_one_iter(self, batch):
        images, targets = batch_to_device(batch, self.device, self.memory_format)
        targets["epoch_id"] = self.epoch
        lr = self.lr_scheduler.step(self.optimizer, self.progress_iter)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.fp16):
            losses, problem = divergence.forward_losses(self.model, self.raw_model, images, targets)
        self._check_finite(problem or divergence.nonfinite_loss(losses))
        loss = losses["total_loss"]
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        clip = self.exp.clip_grad_norm
        if clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update()
        return losses, lr

    def after_epoch(self):
        self.log_epoch()
        done = self.epoch + 1
        last = done == self.max_epoch
        snapshot = last or done % max(1, self.exp.snapshot_epoch) == 0
        do_eval = last or (self.exp.eval_interval > 0 and done % self.exp.eval_interval == 0)
        if self.ema is not None:
            weights = self.ema.snapshot() if snapshot else self.ema.averaged()
        else:
            weights = {k: v.detach().clone() for k, v in self.raw_model.state_dict().items()}
        # before eval or save
        problem = divergence.nonfinite_saved_state(self.checkpoint(weights, rng=None))
        if problem:
            self._diverged(problem)
        is_best = False
        if do_eval:
            ap = self.evaluate(weights)
            is_best = ap > self.best_ap  # a tie is no new best; best_ap is -1 before any
            self.best_ap = max(self.best_ap, ap)
        self.save(weights, snapshot, is_best)

    def after_train(self):
        logger.info(f"training of {self.exp.exp_name} finished in {self.save_dir}; best "
                    f"AP50:95 {self.best_ap * 100:.2f}%")

    # ------------------------------------------------------------------ steps
    def _check_finite(self, what):
        """Stop every rank when one found a problem (``what``: a message or None)."""
        bad = torch.tensor(float(what is not None), device=self.device)
        if self.world_size > 1:
            dist.all_reduce(bad, op=dist.ReduceOp.MAX)
        if bad.item():
            self._diverged(what or "the loss is not finite on another process")

    def _diverged(self, what):
        kept = divergence.last_good_checkpoint(self.save_dir)
        error = TrainingDiverged(
            f"{what} at epoch {self.epoch + 1}/{self.max_epoch}, iteration {self.iter + 1}/"
            f"{self.iters_per_epoch} (global iteration {self.progress_iter + 1}): training "
            f"stopped; {kept}. Lower the learning rate (base_lr) or check the data")
        logger.error(str(error))
        raise error

    def log_progress(self, size, window):
        losses, iter_time, data_time, lr = self.meters.progress(window)
        step = self.progress_iter + 1
        if not self.is_main:
            return
        mem = (f", mem: {torch.cuda.max_memory_allocated(self.device) / 2 ** 20:.0f}Mb"
               if self.device.type == "cuda" else "")
        loss_text = ", ".join(f"{k}: {v:.4f}" for k, v in losses.items())
        left = eta(self.max_epoch * self.iters_per_epoch - step, iter_time)
        logger.info(f"epoch: {self.epoch + 1}/{self.max_epoch}, iter: {self.iter + 1}/"
                    f"{self.iters_per_epoch}{mem}, iter_time: {iter_time:.3f}s, data_time: "
                    f"{data_time:.3f}s, {loss_text}, lr: {lr:.4e}, size: {tuple(size)}, "
                    f"ETA: {left}")
        for name, value in losses.items():
            self.writer.add_scalar(f"train/{name}", value, step)
        self.writer.add_scalar("train/lr", lr, step)

    def log_epoch(self):
        """One line per epoch: mean losses, duration and images/s over all processes."""
        means, seconds, speed, skipped = self.meters.epoch_summary()
        if self.world_size > 1:
            skipped = sum(dist_utils.all_gather_object(skipped), [])
        if self.is_main:
            if skipped:
                logger.warning(f"epoch {self.epoch + 1}: {len(skipped)} unreadable image(s) "
                               f"skipped (skip_bad_images): {'; '.join(sorted(set(skipped)))}")
            text = ", ".join(f"{k} {v:.4f}" for k, v in means.items())
            logger.info(f"epoch {self.epoch + 1}/{self.max_epoch} done in {seconds:.1f}s "
                        f"({speed * self.world_size:.1f} images/s): mean {text}")

    def evaluate(self, weights):
        """AP (0..1) of ``weights`` on the eval set (every rank gets the same value)."""
        self.eval_model.load_state_dict(weights)
        ap50_95, ap50, _, _ = self.evaluator.evaluate(
            self.eval_model, self.eval_loader, self.device, fp16=self.fp16,
            distributed=self.world_size > 1, output_dir=self.save_dir)
        if self.is_main:
            logger.info(f"epoch {self.epoch + 1}: AP50:95 {ap50_95 * 100:.2f}%, "
                        f"AP50 {ap50 * 100:.2f}%"
                        f"{' (EMA weights)' if self.ema is not None else ''}")
            self.writer.add_scalar("val/COCOAP50_95", ap50_95, self.epoch + 1)
            self.writer.add_scalar("val/COCOAP50", ap50, self.epoch + 1)
        return float(ap50_95)

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self, weights, rng):
        done = self.epoch + 1
        return dict(model=weights, train_model=self.raw_model.state_dict(),
                    ema=None if self.ema is None else self.ema.state_dict(),
                    optimizer=self.optimizer.state_dict(),
                    scheduler=self.lr_scheduler.state_dict(), scaler=self.scaler.state_dict(),
                    epoch=done, iteration=done * self.iters_per_epoch,
                    best_ap=self.best_ap, seed=self.seed, rng=rng, exp_name=self.exp.exp_name,
                    num_classes=int(self.exp.num_classes), class_names=exp_class_names(self.exp))

    def save(self, weights, snapshot, is_best):
        rng = dist_utils.all_gather_object(get_rng_state())
        if self.is_main:
            ckpt = self.checkpoint(weights, rng)
            names = ["latest_ckpt.pth"] + (["best_ckpt.pth"] if is_best else []) + (
                [f"epoch_{self.epoch + 1}.pth"] if snapshot else [])
            for name in names:
                ckpt_io.save_checkpoint(ckpt, os.path.join(self.save_dir, name))
            logger.info(f"saved {', '.join(names)} in {self.save_dir}")
        dist_utils.synchronize()
