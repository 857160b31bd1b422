"""ImageNet-size data: an ImageFolder streamed by DataLoader worker processes.

Data too large to keep resident (``data.stream=true``) is read batch by batch: worker
processes decode each image with Pillow and cut two independent random-resized crops at
the training size on the CPU (:class:`CropFolder`), and the device applies the rest of
the recipe (flip, jitter, grayscale, blur, solarize, normalise; theory.md section 5, [E]
for ``byol``) in one batched pass (:func:`build_crop_free_augment`, the stages of
augment.py without their crop).

Crops are seeded by ``(seed, epoch, index)``, so they do not depend on the number of
workers, and a resumed run sees the crops an uninterrupted one would; the batch order of
an epoch is a permutation seeded by ``(seed, epoch)``, sharded by rank when
torch.distributed is initialised, and a resume skips the finished batches through the
sampler without decoding them.
"""

from __future__ import annotations

import math
import zipfile
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from linear_ssl.train.augment import CROP_RATIO, Augment, build_view, recipe_views
from linear_ssl.train.data import (
    _check_listing,
    _dir_listing,
    _zip_listing,
    dataset_stats,
    decode_error,
    subset_indices,
)


def crop_box(
    rng: np.random.Generator,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float] = CROP_RATIO,
) -> tuple[int, int, int, int]:
    """RandomResizedCrop's box ``(top, left, h, w)``: area fraction uniform in ``scale``,
    log aspect ratio (w / h) uniform in ``ratio``; after 10 misses, the central crop of
    the image clamped to ``ratio`` (torchvision's algorithm)."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        h, w = height, round(height * ratio[1])
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


class FolderImages(Dataset):
    """The files of ``root/<split>/<class>/*.jpg|png`` (a directory or a .zip), their labels
    (class index, classes sorted by name) and a Pillow decoder; subclasses cut the items."""

    def __init__(self, root: str | Path, split: str) -> None:
        root = Path(root).expanduser()
        if root.is_file() and root.suffix.lower() == ".zip":
            listing, _ = _zip_listing(root, split)
        elif (root / split).is_dir():
            listing, _ = _dir_listing(root, split)
        else:
            raise FileNotFoundError(
                f"image folder not found: expected a directory or .zip at {root} holding "
                f"{split}/<class>/*.jpg|png; pass data.root=..."
            )
        _check_listing(listing, str(root), split)
        self.root, self.is_zip = root, root.is_file()
        self.classes = sorted(listing)
        self.files = [f for c in self.classes for f in listing[c]]
        self.labels = [i for i, c in enumerate(self.classes) for _ in listing[c]]
        self._zip: zipfile.ZipFile | None = None  # opened lazily, once per worker process

    def __len__(self) -> int:
        return len(self.files)

    def __getstate__(self) -> dict:  # an open zip handle does not cross process boundaries
        return {**self.__dict__, "_zip": None}

    def _decode(self, index: int):
        """Image ``index`` as an RGB Pillow image (one-line error if it does not decode)."""
        from PIL import Image, UnidentifiedImageError

        member = self.files[index]
        try:
            if self.is_zip:
                if self._zip is None:
                    self._zip = zipfile.ZipFile(self.root)
                opened = Image.open(self._zip.open(member))
            else:
                opened = Image.open(member)
            with opened as image:
                return image.convert("RGB")
        except (UnidentifiedImageError, OSError, SyntaxError) as err:
            raise decode_error(str(member), err) from None


def _uint8_chw(image) -> torch.Tensor:
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).contiguous()


class CropFolder(FolderImages):
    """An ImageFolder as pairs of uint8 training crops.

    An item is keyed by ``(epoch, index)`` (the :class:`EpochSampler` yields such keys)
    and is ``(crop1, crop2, label)``: two independent random-resized crops ``(3, S, S)``
    of image ``index``, drawn from a generator seeded by ``(seed, epoch, index)``, each
    resized with its view's filter (``resample``: "bilinear" or "bicubic").
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        image_size: int,
        crop_scale: tuple[float, float] = (0.08, 1.0),
        seed: int = 0,
        resample: tuple[str, str] = ("bilinear", "bilinear"),
    ) -> None:
        super().__init__(root, split)
        self.image_size, self.crop_scale, self.seed = image_size, tuple(crop_scale), seed
        self.resample = tuple(_pil_filter(name) for name in resample)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, int]:
        epoch, index = key
        image = self._decode(index)
        rng = np.random.default_rng([self.seed, epoch, index])
        size = (self.image_size, self.image_size)
        crops = []
        for resample in self.resample:
            top, left, h, w = crop_box(rng, image.height, image.width, self.crop_scale)
            crop = image.resize(size, resample, box=(left, top, left + w, top + h))
            crops.append(_uint8_chw(crop))
        return crops[0], crops[1], self.labels[index]


class CenterCropFolder(FolderImages):
    """An ImageFolder as evaluation views: item ``index`` is ``(view, label)``, the uint8
    ``(3, S, S)`` central square of the image after its shorter side is resized (bilinear)
    to ``round(S / crop_fraction)`` (the usual ImageNet evaluation: S = 224, 0.875)."""

    def __init__(
        self, root: str | Path, split: str, image_size: int, crop_fraction: float = 0.875
    ) -> None:
        super().__init__(root, split)
        if not 0 < crop_fraction <= 1:
            raise ValueError(f"crop_fraction={crop_fraction} must lie in (0, 1]")
        self.image_size, self.crop_fraction = image_size, crop_fraction

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        image = self._decode(index)
        short = round(self.image_size / self.crop_fraction)
        scale = short / min(image.width, image.height)
        width, height = (
            max(short, round(image.width * scale)),
            max(short, round(image.height * scale)),
        )
        if (width, height) != image.size:
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        top, left = (height - self.image_size) // 2, (width - self.image_size) // 2
        view = image.crop((left, top, left + self.image_size, top + self.image_size))
        return _uint8_chw(view), self.labels[index]


def _pil_filter(name: str) -> int:
    from PIL import Image

    filters = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}
    if name not in filters:
        raise ValueError(f"resample {name!r} is unknown: use 'bilinear' or 'bicubic'")
    return filters[name]


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of torch.distributed when initialised, else (0, 1)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class EpochSampler(Sampler):
    """Keys ``(epoch, index)`` of one rank's share of an epoch, in a seeded order.

    The order is a permutation of all ``n`` images seeded by ``(seed, epoch)`` (as the
    resident loop's); rank ``r`` of ``world_size`` takes every world_size-th image from
    position ``r``, after dropping the ``n % world_size`` last ones, so the ranks' shares
    are disjoint and equally long. ``set_epoch(epoch, skip)`` starts the next pass at
    that epoch, ``skip`` keys in (a resume's finished batches, never decoded).
    """

    def __init__(self, n: int, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside 0..{world_size - 1}: check the launcher")
        if n < world_size:
            raise ValueError(f"{n} images cannot be shared by {world_size} ranks: add images")
        self.n, self.seed, self.rank, self.world_size = n, seed, rank, world_size
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def __len__(self) -> int:
        return self.n // self.world_size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n, generator=g)[: len(self) * self.world_size]
        share = order[self.rank :: self.world_size][self.skip :]
        return iter([(self.epoch, int(i)) for i in share])


def pair_collate(
    items: Sequence[tuple[torch.Tensor, torch.Tensor, int]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of B items -> (the B first crops then the B second crops (2B, 3, S, S), labels)."""
    first, second, labels = zip(*items, strict=True)
    return torch.stack(first + second), torch.tensor(labels, dtype=torch.int64)


class CropFreeAugment(Augment):
    """The device half of a streamed recipe: ``two_views`` takes the loader's (2B, 3, S, S)
    uint8 crops (first crops, then second crops) and applies view 1's remaining stages to
    the first half and view 2's to the second."""

    def two_views(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x1, x2 = self._to_unit(images).chunk(2)
        return self._normalise(self.view1(x1)), self._normalise(self.view2(x2))


def build_crop_free_augment(
    recipe: str, image_size: int, mean: Sequence[float], std: Sequence[float]
) -> CropFreeAugment:
    """``recipe``'s two views (augment.py) without their crop stage, which the workers did."""

    def without_crop(view: nn.Sequential) -> nn.Sequential:
        return nn.Sequential(OrderedDict((k, m) for k, m in view.named_children() if k != "crop"))

    views = [without_crop(build_view(v, image_size)) for v in recipe_views(recipe)]
    return CropFreeAugment(*views, image_size, mean, std)


class Stream:
    """The streamed training data of a config: ``batches(epoch, start)`` yields the uint8
    crop batches (2B, 3, S, S) of that epoch from batch ``start`` on, on ``device``."""

    def __init__(self, cfg: DictConfig, device: torch.device) -> None:
        d, a = cfg.data, cfg.augment
        if d.name != "imagefolder":
            raise ValueError(
                f"data.stream=true reads an ImageFolder: set data.name=imagefolder (got {d.name!r})"
            )
        if d.root is None:
            raise ValueError("data.stream=true needs data.root: the folder or .zip of the images")
        if d.limit is not None:
            raise ValueError(
                "data.limit applies to resident data only: with data.stream=true, point "
                "data.root at a smaller ImageFolder instead"
            )
        if OmegaConf.select(cfg, "distributed.global_augment", default=False):
            raise ValueError(
                "distributed.global_augment=true needs resident data: with data.stream=true "
                "each rank decodes only its own share; set distributed.global_augment=false"
            )
        rank, world = rank_and_world()
        if cfg.batch_size % world:
            raise ValueError(
                f"batch_size={cfg.batch_size} (global) does not split over {world} ranks: "
                "make it a multiple of the world size"
            )
        self.batch_size = cfg.batch_size // world
        views = recipe_views(a.recipe)
        self.dataset = CropFolder(
            d.root,
            d.train_split,
            a.image_size,
            tuple(a.crop_scale),
            cfg.seed,
            resample=(views[0].resample, views[1].resample),
        )
        self.sampler = EpochSampler(len(self.dataset), cfg.seed, rank, world)
        if len(self.sampler) < self.batch_size:
            raise ValueError(
                f"batch_size={cfg.batch_size} exceeds the {len(self.dataset)} training images: "
                "lower batch_size"
            )
        workers = d.workers
        self.device = device
        self.loader = DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            sampler=self.sampler,
            num_workers=workers,
            collate_fn=pair_collate,
            pin_memory=device.type == "cuda",
            drop_last=True,
            persistent_workers=workers > 0,
            prefetch_factor=4 if workers > 0 else None,
            generator=torch.Generator(),  # leaves the global RNG (checkpointed) untouched
        )
        mean, std = dataset_stats(d.name)
        self.augment = build_crop_free_augment(a.recipe, a.image_size, mean, std)

    def __len__(self) -> int:
        """Batches an epoch (one pass over this rank's share, last partial batch dropped)."""
        return len(self.loader)

    def batches(self, epoch: int, start: int = 0) -> Iterator[torch.Tensor]:
        self.sampler.set_epoch(epoch, start * self.batch_size)
        try:
            for crops, _ in self.loader:
                yield crops.to(self.device, non_blocking=True)
        except ValueError as err:  # a worker's error arrives wrapped in its traceback
            last = str(err).strip().splitlines()[-1]
            raise ValueError(last.removeprefix("ValueError: ")) from None


def eval_loader(
    cfg: DictConfig, root: str | Path, split: str, limit: int | None, device: torch.device
) -> tuple[DataLoader, list[str]]:
    """The evaluation views of a streamed ImageFolder split and its class names:
    ``CenterCropFolder`` at ``augment.image_size`` and ``eval.crop_fraction``, in file order
    (``limit``: the fixed random subset of ``data.subset_indices``), decoded by
    ``data.workers`` processes."""
    dataset = CenterCropFolder(root, split, cfg.augment.image_size, cfg.eval.crop_fraction)
    keep = subset_indices(len(dataset), limit)
    workers = cfg.data.workers
    loader = DataLoader(
        dataset if keep is None else Subset(dataset, keep.tolist()),
        batch_size=cfg.eval.batch_size,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if workers > 0 else None,
    )
    return loader, dataset.classes
