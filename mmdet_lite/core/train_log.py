"""What the training loop prints: a progress line every ``print_interval`` iterations (and at the
last iteration of an epoch, so short epochs are never silent) and a summary after every epoch."""
import datetime
import time
from collections import defaultdict

import numpy as np
import torch

__all__ = ["TrainMeters", "eta"]

_TIMES = ("data_time", "iter_time", "lr")


class TrainMeters:
    """Running losses and timings of one process's training loop.

    ``add(losses, lr, data_time, iter_time, num_images)`` after each iteration;
    ``progress(window)`` -> (mean losses of the last ``window`` iterations, iter_time,
    data_time, lr); ``epoch_summary()`` -> (mean losses over the epoch, seconds, images/s,
    skipped images) and a reset for the next epoch.
    """

    def __init__(self):
        self.recent = defaultdict(list)
        self._start_epoch()

    def _start_epoch(self):
        self.epoch_sums = defaultdict(float)
        self.epoch_iters = 0
        self.epoch_images = 0
        self.epoch_start = time.perf_counter()
        self.epoch_skipped = []

    def add(self, losses, lr, data_time, iter_time, num_images, skipped=()):
        for name, value in losses.items():
            if torch.is_tensor(value) and value.numel() == 1:
                value = value.detach().float()
                self.recent[name].append(value)
                self.epoch_sums[name] = self.epoch_sums[name] + value  # no device sync
        self.recent["lr"].append(lr)
        self.recent["data_time"].append(data_time)
        self.recent["iter_time"].append(iter_time)
        self.epoch_iters += 1
        self.epoch_images += int(num_images)
        self.epoch_skipped += list(skipped)

    def progress(self, window):
        """Means over the last ``window`` iterations; older entries are dropped."""
        iter_time = float(np.mean(self.recent["iter_time"][-window:]))
        data_time = float(np.mean(self.recent["data_time"][-window:]))
        losses = {k: torch.stack(v[-window:]).mean().item() for k, v in self.recent.items()
                  if k not in _TIMES}
        lr = self.recent["lr"][-1]
        self.recent = defaultdict(list, {k: v[-window:] for k, v in self.recent.items()})
        return losses, iter_time, data_time, lr

    def epoch_summary(self):
        """(mean losses over the epoch's iterations, seconds, images/s, the errors of the
        unreadable images skipped); starts the next epoch."""
        seconds = time.perf_counter() - self.epoch_start
        means = {k: float(v) / max(1, self.epoch_iters) for k, v in self.epoch_sums.items()}
        speed = self.epoch_images / seconds if seconds > 0 else 0.0
        skipped = self.epoch_skipped
        self._start_epoch()
        return means, seconds, speed, skipped


def eta(remaining_iters, iter_time):
    """The time left as ``H:MM:SS``."""
    return datetime.timedelta(seconds=int(remaining_iters * iter_time))
