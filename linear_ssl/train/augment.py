"""Batched two-view augmentations of theory.md section 5, on the images' own device.

``build_augment(recipe, image_size, mean, std)`` returns an :class:`Augment` whose
``two_views`` turns a uint8 batch ``(B, 3, H, W)`` into two normalised float views, with
random parameters drawn per sample (kornia.augmentation, one vectorised pass per stage).
Recipes:

- ``cifar10``: RandomResizedCrop, flip, ColorJitter(0.4, 0.4, 0.4, 0.1) p=0.8,
  grayscale p=0.2 (both views alike);
- ``stl10``: RandomResizedCrop, flip, ColorJitter(0.8, 0.8, 0.8, 0.2) p=0.8, grayscale
  p=0.2, Gaussian blur (kernel 9, sigma in [0.1, 2]) always;
- ``byol`` ([E], the BYOL ImageNet recipe): RandomResizedCrop (bicubic), flip,
  ColorJitter(0.4, 0.4, 0.2, 0.1) p=0.8, grayscale p=0.2, Gaussian blur (kernel about a
  tenth of the image, sigma in [0.1, 2]) p=1.0 / 0.1 and solarize p=0.0 / 0.2 on views 1 / 2.

kornia's ColorJitter uses torchvision's formulas (brightness multiplies, contrast and
saturation blend with the grayscale mean / image, hue shifts by a fraction of the circle),
unlike ColorJiggle; it draws one random order of the four steps per batch (torchvision:
per image). Randomness: every parameter is drawn from torch's global CPU generator (the
kornia modules stay on the CPU and send their parameters to the images' device), so
``torch.manual_seed`` fixes the views and ``torch.get_rng_state`` checkpoints them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import kornia.augmentation as K
import torch
import torch.nn.functional as F
from torch import nn

RECIPES = ("cifar10", "stl10", "byol")
BLUR_SIGMA = (0.1, 2.0)
CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)


@dataclass(frozen=True)
class ViewRecipe:
    """The random stages of one view; a probability of 0 leaves the stage out."""

    jitter: tuple[float, float, float, float]  # brightness, contrast, saturation, hue
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_p: float = 0.0
    blur_kernel: int | None = None  # None: the odd size nearest a tenth of the image
    solarize_p: float = 0.0
    resample: str = "bilinear"


def recipe_views(recipe: str) -> tuple[ViewRecipe, ViewRecipe]:
    """The two views' stages of ``recipe`` (theory.md section 5; byol: [E])."""
    if recipe == "cifar10":
        view = ViewRecipe(jitter=(0.4, 0.4, 0.4, 0.1))
        return view, view
    if recipe == "stl10":
        view = ViewRecipe(jitter=(0.8, 0.8, 0.8, 0.2), blur_p=1.0, blur_kernel=9)
        return view, view
    if recipe == "byol":
        jitter = (0.4, 0.4, 0.2, 0.1)
        return (
            ViewRecipe(jitter=jitter, blur_p=1.0, solarize_p=0.0, resample="bicubic"),
            ViewRecipe(jitter=jitter, blur_p=0.1, solarize_p=0.2, resample="bicubic"),
        )
    raise ValueError(f"unknown augmentation recipe {recipe!r}: choose one of {', '.join(RECIPES)}")


def build_view(
    view: ViewRecipe, image_size: int, crop_scale: tuple[float, float] = (0.08, 1.0)
) -> nn.Sequential:
    """The stages of one view as a named ``nn.Sequential`` on floats in [0, 1]."""
    stages: OrderedDict[str, nn.Module] = OrderedDict(
        crop=K.RandomResizedCrop(
            (image_size, image_size),
            scale=crop_scale,
            ratio=CROP_RATIO,
            resample=view.resample.upper(),
            align_corners=False,
        ),
        flip=K.RandomHorizontalFlip(p=0.5),
    )
    if view.jitter_p > 0:
        stages["jitter"] = K.ColorJitter(*view.jitter, p=view.jitter_p)
    if view.grayscale_p > 0:
        stages["grayscale"] = K.RandomGrayscale(p=view.grayscale_p)
    if view.blur_p > 0:
        kernel = view.blur_kernel or 2 * round(0.05 * image_size) + 1
        stages["blur"] = K.RandomGaussianBlur(kernel, BLUR_SIGMA, p=view.blur_p)
    if view.solarize_p > 0:  # threshold 0.5, no addition: x -> 1 - x where x >= 0.5
        stages["solarize"] = K.RandomSolarize(thresholds=0.0, additions=0.0, p=view.solarize_p)
    return nn.Sequential(stages)


class Augment:
    """Two random views for pre-training and a deterministic transform for probes."""

    def __init__(
        self,
        view1: nn.Sequential,
        view2: nn.Sequential,
        image_size: int,
        mean: Sequence[float],
        std: Sequence[float],
    ) -> None:
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(
                f"mean and std need 3 channels and a positive std, got mean={mean}, std={std}"
            )
        self.view1, self.view2 = view1, view2
        self.image_size = image_size
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self._stats_on: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def two_views(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Two independently augmented, normalised float views of a uint8 batch."""
        x = self._to_unit(images)
        return self._normalise(self.view1(x)), self._normalise(self.view2(x))

    def eval_transform(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised floats of a uint8 batch, resized to ``image_size`` if it differs."""
        x = self._to_unit(images)
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = F.interpolate(
                x, size=(self.image_size, self.image_size), mode="bilinear", antialias=True
            )
        return self._normalise(x)

    def _to_unit(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"augmentations take a (B, 3, H, W) uint8 batch, got {tuple(images.shape)} "
                f"{images.dtype}"
            )
        return images.float().div_(255.0)

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        if x.device not in self._stats_on:  # copy mean and std to each device once
            self._stats_on[x.device] = (self.mean.to(x.device), self.std.to(x.device))
        mean, std = self._stats_on[x.device]
        return (x - mean) / std


def build_augment(
    recipe: str,
    image_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    crop_scale: tuple[float, float] = (0.08, 1.0),
) -> Augment:
    """The :class:`Augment` of ``recipe`` ("cifar10", "stl10", "byol") at ``image_size`` px."""
    if not 0 < crop_scale[0] <= crop_scale[1] <= 1:
        raise ValueError(f"crop_scale must satisfy 0 < min <= max <= 1, got {crop_scale}")
    if image_size < 1:
        raise ValueError(f"image_size must be a positive number of pixels, got {image_size}")
    view1, view2 = recipe_views(recipe)
    return Augment(
        build_view(view1, image_size, crop_scale),
        build_view(view2, image_size, crop_scale),
        image_size,
        mean,
        std,
    )
