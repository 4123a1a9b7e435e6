"""Training-time augmentation of face crops, batched on the training device (kornia)."""

from __future__ import annotations

from torch import nn


def build_augmentation(size: int) -> nn.Module:
    """Flip, random resized crop, small rotation, colour jitter, blur and occlusion patches on [0, 1] images."""
    import kornia.augmentation as K

    return K.AugmentationSequential(
        K.RandomHorizontalFlip(),
        K.RandomResizedCrop((size, size), scale=(0.8, 1.0), ratio=(0.9, 1.1)),
        K.RandomRotation(10.0, p=0.5),
        K.ColorJitter(0.3, 0.3, 0.3, 0.02, p=0.8),
        K.RandomGrayscale(p=0.1),
        K.RandomGaussianBlur((5, 5), (0.1, 1.5), p=0.2),
        K.RandomErasing(scale=(0.02, 0.12), ratio=(0.5, 2.0), p=0.3),
    )
