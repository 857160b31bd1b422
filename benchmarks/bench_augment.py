"""Throughput of the CIFAR-10 two-view augmentation: kornia (used) vs a hand-vectorised one.

linear_ssl.train.augment uses kornia.augmentation; the rule is to replace it only by an
own version at least 2x faster. This benchmark keeps that comparison honest: ``OwnCifar``
below is a compact vectorised implementation of the same recipe (theory.md section 5:
RandomResizedCrop + flip folded into one ``grid_sample``, ColorJitter(0.4, 0.4, 0.4, 0.1)
p=0.8 with torchvision's formulas, grayscale p=0.2, normalise), timed on the same batch.

Usage: OMP_NUM_THREADS=1 python benchmarks/bench_augment.py [--batch 128] [--size 32]
Prints the best images per second (two views per image) of interleaved rounds, 1 thread.
"""

from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn.functional as F

from linear_ssl.train.augment import build_augment
from linear_ssl.train.data import dataset_stats

GRAY = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


def crop_boxes(n: int, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), tries: int = 10):
    """torchvision's RandomResizedCrop draw, vectorised: (w, h, cx, cy) as image fractions."""
    area = torch.empty(n, tries).uniform_(*scale)
    log_ratio = torch.empty(n, tries).uniform_(math.log(ratio[0]), math.log(ratio[1]))
    w = (area * log_ratio.exp()).sqrt()
    h = (area / log_ratio.exp()).sqrt()
    fits = (w <= 1) & (h <= 1)
    first = fits.float().argmax(1)
    any_fit = fits.any(1)
    pick = torch.arange(n)
    w = torch.where(any_fit, w[pick, first], torch.ones(n))  # fallback: the whole image
    h = torch.where(any_fit, h[pick, first], torch.ones(n))
    cx = (torch.rand(n) * (1 - w)) + w / 2
    cy = (torch.rand(n) * (1 - h)) + h / 2
    return w, h, cx, cy


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(1)
    maxc, _ = x.max(1)
    minc, _ = x.min(1)
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    h = torch.where(
        maxc == r, (g - b) / safe, torch.where(maxc == g, 2 + (b - r) / safe, 4 + (r - g) / safe)
    )
    h = torch.where(delta > 0, (h / 6) % 1, torch.zeros_like(h))
    s = torch.where(maxc > 0, delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc)), maxc * 0)
    return torch.stack([h, s, maxc], 1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    h, s, v = x.unbind(1)
    k = torch.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], 1)
    return v.unsqueeze(1) - (v * s).unsqueeze(1) * (torch.minimum(k, 4 - k).clamp(0, 1))


class OwnCifar:
    """The CIFAR-10 recipe of section 5 as a handful of batched tensor operations."""

    def __init__(self, size: int, mean, std, jitter=(0.4, 0.4, 0.4, 0.1)):
        self.size = size
        self.mean = torch.tensor(mean).view(1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 3, 1, 1)
        self.jitter = jitter

    def view(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        w, h, cx, cy = crop_boxes(n)
        flip = torch.where(torch.rand(n) < 0.5, -1.0, 1.0)
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = w * flip
        theta[:, 0, 2] = 2 * cx - 1
        theta[:, 1, 1] = h
        theta[:, 1, 2] = 2 * cy - 1
        grid = F.affine_grid(theta, [n, 3, self.size, self.size], align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", align_corners=False)
        b, c, s, hue = self.jitter
        on = (torch.rand(n) < 0.8).view(n, 1, 1, 1)
        factors = {
            0: torch.empty(n, 1, 1, 1).uniform_(1 - b, 1 + b),
            1: torch.empty(n, 1, 1, 1).uniform_(1 - c, 1 + c),
            2: torch.empty(n, 1, 1, 1).uniform_(1 - s, 1 + s),
            3: torch.empty(n, 1, 1).uniform_(-hue, hue),
        }
        jittered = x
        for step in torch.randperm(4).tolist():
            f = factors[step]
            if step == 0:
                jittered = (jittered * f).clamp(0, 1)
            elif step == 1:
                gray_mean = (jittered * GRAY).sum(1, keepdim=True).mean((2, 3), keepdim=True)
                jittered = (f * jittered + (1 - f) * gray_mean).clamp(0, 1)
            elif step == 2:
                gray = (jittered * GRAY).sum(1, keepdim=True)
                jittered = (f * jittered + (1 - f) * gray).clamp(0, 1)
            else:
                hsv = rgb_to_hsv(jittered)
                hsv = torch.stack([(hsv[:, 0] + f) % 1, hsv[:, 1], hsv[:, 2]], 1)
                jittered = hsv_to_rgb(hsv)
        x = torch.where(on, jittered, x)
        to_gray = (torch.rand(n) < 0.2).view(n, 1, 1, 1)
        x = torch.where(to_gray, (x * GRAY).sum(1, keepdim=True).expand_as(x), x)
        return (x - self.mean) / self.std

    def two_views(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = images.float() / 255
        return self.view(x), self.view(x)


def images_per_second(two_views, images: torch.Tensor, seconds: float) -> float:
    """Images a second over ``seconds`` of back-to-back calls."""
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        two_views(images)
        done += images.shape[0]
    return done / (time.perf_counter() - start)


def best_rates(candidates: dict, images: torch.Tensor, seconds: float, rounds: int = 5) -> dict:
    """Best rate of each candidate over interleaved rounds (robust to a shared, busy CPU)."""
    for two_views in candidates.values():
        two_views(images)  # warm-up
    rates = {name: 0.0 for name in candidates}
    for _ in range(rounds):
        for name, two_views in candidates.items():
            rate = images_per_second(two_views, images, seconds / rounds)
            rates[name] = max(rates[name], rate)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0, help="per candidate")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    mean, std = dataset_stats("cifar10")
    images = torch.randint(0, 256, (args.batch, 3, args.size, args.size), dtype=torch.uint8)
    kornia_aug = build_augment("cifar10", args.size, mean, std)
    own = OwnCifar(args.size, mean, std)
    kornia_name, own_name = "kornia (linear_ssl.train.augment)", "own vectorised (this file)"
    rates = best_rates(
        {kornia_name: kornia_aug.two_views, own_name: own.two_views}, images, args.seconds
    )
    print(f"two views, batch {args.batch}, {args.size} px, 1 CPU thread, torch {torch.__version__}")
    for name, rate in rates.items():
        print(f"  {name:36s} {rate:9.0f} images/s")
    ratio = rates[own_name] / rates[kornia_name]
    print(f"  own / kornia: {ratio:.2f}x (kornia kept unless own >= 2x)")


if __name__ == "__main__":
    main()
