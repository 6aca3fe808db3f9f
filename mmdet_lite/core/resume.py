"""``--resume``: put a training checkpoint's state back into a ``Trainer``."""
from loguru import logger

from mmdet_lite.utils import checkpoint as ckpt_io
from mmdet_lite.utils.errors import UserError

__all__ = ["restore_training_state"]


def restore_training_state(trainer, ckpt, path):
    """Restore everything from ``ckpt``; return this rank's RNG state (restored last)."""
    state = ckpt.get("train_model") or ckpt.get("model")
    if not isinstance(state, dict) or not isinstance(ckpt.get("optimizer"), dict):
        raise UserError(f"--resume: {path} is not a training checkpoint (no optimizer state); "
                        "use -c without --resume to initialise the weights from it")
    ckpt_io.load_weights(trainer.raw_model, state, strict=True, source=path)
    trainer.optimizer.load_state_dict(ckpt["optimizer"])
    if trainer.ema is not None:
        if ckpt.get("ema"):
            trainer.ema.load_state_dict(ckpt["ema"])
        else:
            logger.warning(f"{path} has no EMA state: the average restarts now")
    if trainer.scaler.is_enabled() and ckpt.get("scaler"):
        trainer.scaler.load_state_dict(ckpt["scaler"])
    changed = trainer.lr_scheduler.load_state_dict(ckpt.get("scheduler") or {})
    if changed:
        logger.warning("the LR schedule differs from the checkpoint's in: "
                       f"{', '.join(changed)}")
    trainer.start_epoch = int(ckpt["epoch"])
    trainer.best_ap = float(ckpt.get("best_ap", -1.0))
    if ckpt.get("iteration") != trainer.start_epoch * trainer.iters_per_epoch:
        logger.warning(f"iterations per epoch changed since {path} was written: the LR "
                       "schedule continues from epoch * new iterations per epoch")
    logger.info(f"resumed from {path}: {trainer.start_epoch} epochs done, best AP50:95 "
                f"{trainer.best_ap * 100:.2f}%")
    rng = ckpt.get("rng") or []
    if len(rng) != trainer.world_size:
        logger.warning(f"{path} holds RNG states of {len(rng)} process(es), not "
                       f"{trainer.world_size}: random streams restart from the seed")
        return None
    return rng[trainer.rank]

