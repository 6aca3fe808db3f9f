"""Logging with loguru: one console format for every tool, a log file, quiet non-main ranks."""
import os
import sys

from loguru import logger

from .errors import UserError

__all__ = ["setup_logger"]

_FORMAT = "<green>{time:YYYY-MM-DD HH:mm:ss}</green> | <level>{level: <7}</level> | {message}"


def setup_logger(save_dir=None, rank=0, filename="log.txt", mode="a", level="INFO"):
    """Send logs to stderr (rank 0 at ``level``, other ranks only warnings) and, on rank 0, to
    ``save_dir/filename`` when ``save_dir`` is given. Returns the loguru ``logger``.

    ``mode="o"`` starts a fresh log file; ``"a"`` appends. An unwritable ``save_dir`` is a
    ``UserError`` naming it.
    """
    logger.remove()
    logger.add(sys.stderr, format=_FORMAT, level=level if rank == 0 else "WARNING", colorize=None)
    if save_dir is not None and rank == 0:
        path = os.path.join(save_dir, filename)
        try:
            os.makedirs(save_dir, exist_ok=True)
            if mode == "o" and os.path.exists(path):
                os.remove(path)
            logger.add(path, format=_FORMAT, level=level, enqueue=False, colorize=False)
        except OSError as err:
            raise UserError(f"cannot write the log file in {save_dir}: "
                            f"{err.strerror or err}") from None
    return logger
