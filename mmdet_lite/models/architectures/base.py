"""What every detector shares: Paddle's input normalisation inside the model."""
import torch
import torch.nn as nn

__all__ = ["NormalizedInputDetector"]


class NormalizedInputDetector(nn.Module):
    """Base of the detectors: images are 0..255 RGB float (N, 3, H, W), normalised inside.

    ``normalize(images)`` is ``(images / 255 - pixel_mean) / pixel_std`` (Paddle's NormalizeImage
    order); the statistics are non-persistent (1, 3, 1, 1) buffers, so checkpoints never hold them.
    """

    def __init__(self, pixel_mean, pixel_std):
        super().__init__()
        for name, value in (("pixel_mean", pixel_mean), ("pixel_std", pixel_std)):
            self.register_buffer(name, torch.tensor(value, dtype=torch.float32).view(1, 3, 1, 1),
                                 persistent=False)

    def normalize(self, images):
        """0..255 RGB (N, 3, H, W) -> normalised input, in Paddle's NormalizeImage order."""
        return (images * (1.0 / 255.0) - self.pixel_mean) / self.pixel_std
