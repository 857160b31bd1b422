"""Evaluation of a frozen backbone (theory.md section 5, "Linear evaluation").

- ``extract_features``: frozen backbone features, eval mode, no gradient (of held uint8
  images; ``extract_loader_features`` of a loader's batches, for data too large to hold).
- ``linear_probe``: features standardised with the train statistics, then logistic
  regression (``nn.Linear`` + cross-entropy) trained by Adam, lr 3e-4, wd 1e-3, 50 epochs,
  batch 128. The reference code reports the best test accuracy over epochs; we report the
  final one and give the best only beside it.
- ``knn``: weighted k-nearest-neighbour vote on cosine similarity, weights exp(sim / T)
  (Wu et al. 2018, InstDisc; the solo-learn / lightly monitor).

``evaluate_features`` runs both on features; ``evaluate_backbone`` extracts them first.
Accuracies are top-1 in percent (0-100), as theory.md section 6 reports them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm


def _module_device(module: nn.Module) -> torch.device:
    param = next(module.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


@torch.no_grad()
def extract_features(
    backbone: nn.Module,
    images_uint8: torch.Tensor,
    transform: Callable[[torch.Tensor], torch.Tensor],
    batch_size: int = 512,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Backbone features (N, D) float32 of uint8 images (N, C, H, W), on ``device``.

    ``transform`` maps a uint8 batch (already on ``device``) to the network's float input,
    e.g. ``Augment.eval_transform``. ``device`` None: the backbone's device. The backbone
    runs in eval mode (BatchNorm running statistics) and its mode is restored after.
    """
    images_uint8 = torch.as_tensor(images_uint8)
    if images_uint8.dtype != torch.uint8 or images_uint8.ndim != 4:
        raise ValueError(
            f"extract_features needs uint8 images (N, C, H, W), got {images_uint8.dtype} of "
            f"shape {tuple(images_uint8.shape)}"
        )
    if batch_size < 1:
        raise ValueError(f"extract_features batch_size={batch_size} must be >= 1")
    if images_uint8.shape[0] == 0:
        raise ValueError("extract_features got no images (N = 0)")
    device = torch.device(device) if device is not None else _module_device(backbone)
    return _features(backbone, images_uint8.split(batch_size), transform, device)


@torch.no_grad()
def extract_loader_features(
    backbone: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    transform: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device | str | None = None,
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (N, D) float32 and labels (N,) of a loader's (uint8 images, labels) batches,
    e.g. a DataLoader over ``stream.CenterCropFolder`` (data too large to hold)."""
    device = torch.device(device) if device is not None else _module_device(backbone)
    labels: list[torch.Tensor] = []

    def batches():
        for images, y in tqdm(loader, desc="features", unit="batch", disable=not progress):
            labels.append(torch.as_tensor(y))
            yield images

    features = _features(backbone, batches(), transform, device)
    if features.shape[0] == 0:
        raise ValueError("extract_loader_features got no images: the loader is empty")
    return features, torch.cat(labels).to(device)


def _features(
    backbone: nn.Module,
    batches: Iterable[torch.Tensor],
    transform: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device,
) -> torch.Tensor:
    """The backbone in eval mode (BatchNorm running statistics) over uint8 batches; its mode
    is restored after. An empty iterable gives a (0, 0) tensor."""
    was_training = backbone.training
    backbone.eval()
    try:
        chunks = [
            backbone(transform(batch.to(device, non_blocking=True))).float() for batch in batches
        ]
    finally:
        backbone.train(was_training)
    return torch.cat(chunks) if chunks else torch.zeros(0, 0, device=device)


def _check_features(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    num_classes: int | None,
    who: str,
) -> int:
    """Validate a (features, labels) train/test pair; return the number of classes."""
    for name, x, y in (("train", train_x, train_y), ("test", test_x, test_y)):
        if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
            raise ValueError(
                f"{who}: {name}_x has shape {tuple(x.shape)} and {name}_y {tuple(y.shape)}: "
                "need features (N, D) and labels (N,) with N > 0"
            )
        if x.is_complex() or not x.is_floating_point():
            raise ValueError(f"{who}: {name}_x has dtype {x.dtype}: features must be float")
        if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
            raise ValueError(f"{who}: {name}_y has dtype {y.dtype}: labels must be integers")
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"{who}: {name}_x has NaN or infinite entries: check the backbone")
    if train_x.shape[1] != test_x.shape[1]:
        raise ValueError(
            f"{who}: train_x has {train_x.shape[1]} features but test_x {test_x.shape[1]}: "
            "they must match"
        )
    lo = min(int(train_y.min()), int(test_y.min()))
    hi = max(int(train_y.max()), int(test_y.max()))
    n_classes = hi + 1 if num_classes is None else num_classes
    if lo < 0 or hi >= n_classes:
        raise ValueError(f"{who}: labels span [{lo}, {hi}]: they must lie in [0, {n_classes - 1}]")
    return n_classes


def standardize(train_x: torch.Tensor, test_x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre and scale both sets by the train set's per-feature mean and (population) std.

    Constant features keep scale 1 (as sklearn's StandardScaler does).
    """
    mean = train_x.mean(0)
    centred = train_x - mean
    std = centred.square().mean(0).sqrt()  # two passes: exact for features far from 0
    std = torch.where(std > 0, std, torch.ones_like(std))
    return centred.div_(std), (test_x - mean).div_(std)


def linear_probe(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    *,
    epochs: int = 50,
    lr: float = 3e-4,
    weight_decay: float = 1e-3,
    batch_size: int = 128,
    seed: int = 0,
    num_classes: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Logistic-regression probe of theory.md section 5 on frozen features.

    Runs on the features' device. Returns ``{"final": acc, "best": acc, "per_epoch":
    [acc, ...]}``: test accuracy (percent) after the last epoch (what we report), the best
    over epochs (what the reference code reports), and each epoch's. ``num_classes`` None:
    1 + the largest label seen. ``seed`` fixes the classifier's initialisation and the
    batch order.
    """
    n_classes = _check_features(train_x, train_y, test_x, test_y, num_classes, "linear_probe")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"linear_probe epochs={epochs}, batch_size={batch_size}: both >= 1")
    device = train_x.device
    train_x, test_x = standardize(train_x.float(), test_x.to(device).float())
    train_y, test_y = train_y.to(device).long(), test_y.to(device).long()

    gen = torch.Generator().manual_seed(seed)
    dim = train_x.shape[1]
    # nn.Linear's default U(-1/sqrt(D), 1/sqrt(D)), drawn from the local generator so that
    # an evaluation leaves the global RNG (and so a training run's stream) untouched.
    classifier = nn.Linear(dim, n_classes, device="meta").to_empty(device=device)
    with torch.no_grad():
        bound = 1 / math.sqrt(dim)
        for p in classifier.parameters():
            p.copy_(torch.rand(p.shape, generator=gen).mul_(2 * bound).sub_(bound))
    optimizer = torch.optim.Adam(classifier.parameters(), lr=lr, weight_decay=weight_decay)

    n = train_x.shape[0]
    correct = []
    for _ in tqdm(range(epochs), desc="linear probe", disable=not progress):
        order = torch.randperm(n, generator=gen).to(device, non_blocking=True)
        for idx in order.split(batch_size):
            loss = nn.functional.cross_entropy(classifier(train_x[idx]), train_y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            correct.append((classifier(test_x).argmax(1) == test_y).sum())
    per_epoch = [100.0 * c / test_y.shape[0] for c in torch.stack(correct).tolist()]
    return {"final": per_epoch[-1], "best": max(per_epoch), "per_epoch": per_epoch}


@torch.no_grad()
def knn(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    *,
    k: int = 200,
    temperature: float = 0.1,
    num_classes: int | None = None,
    chunk_size: int = 1024,
) -> float:
    """Weighted kNN top-1 accuracy (percent) on cosine similarity.

    Each test point takes its k most cosine-similar train points; neighbour i votes for its
    label with weight exp(sim_i / temperature); the class with the largest total wins
    (ties: the smaller class index).
    """
    n_classes = _check_features(train_x, train_y, test_x, test_y, num_classes, "knn")
    if not 1 <= k <= train_x.shape[0]:
        raise ValueError(f"knn k={k} must lie in [1, {train_x.shape[0]}] (the train set size)")
    if not temperature > 0:
        raise ValueError(f"knn temperature={temperature} must be > 0")
    device = train_x.device
    train_x = nn.functional.normalize(train_x.float(), dim=1)
    test_x = nn.functional.normalize(test_x.to(device).float(), dim=1)
    train_y, test_y = train_y.to(device).long(), test_y.to(device).long()

    correct = torch.zeros((), dtype=torch.long, device=device)
    for xs, ys in zip(test_x.split(chunk_size), test_y.split(chunk_size), strict=True):
        sim, idx = (xs @ train_x.T).topk(k, dim=1)
        votes = torch.zeros(xs.shape[0], n_classes, device=device)
        votes.scatter_add_(1, train_y[idx], (sim / temperature).exp())
        correct += (votes.argmax(1) == ys).sum()
    return 100.0 * correct.item() / test_y.shape[0]


def evaluate_backbone(
    backbone: nn.Module,
    train_set: Any,
    test_set: Any,
    transform: Callable[[torch.Tensor], torch.Tensor],
    *,
    probe_epochs: int = 50,
    knn_k: int | None = 200,
    seed: int = 0,
    extract_batch_size: int = 512,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Linear probe and kNN of a frozen backbone on two labelled image sets.

    ``train_set`` / ``test_set``: anything with ``.images`` (uint8 (N, C, H, W)) and
    ``.labels`` (int (N,)), such as ``data.ImageSet``; ``.classes`` (if present) fixes the
    number of classes. Returns ``probe_final`` (reported), ``probe_best``,
    ``probe_per_epoch``, and, unless ``knn_k`` is None, ``knn`` with ``knn_k`` (clipped to
    the train set size). Accuracies in percent; ``extract_batch_size`` is the batch of
    the feature pass (the probe keeps theory.md's batch 128).
    """
    device = torch.device(device) if device is not None else _module_device(backbone)
    train_x, test_x = (
        extract_features(backbone, s.images, transform, extract_batch_size, device)
        for s in (train_set, test_set)
    )
    train_y, test_y = (torch.as_tensor(s.labels).to(device) for s in (train_set, test_set))
    classes = getattr(train_set, "classes", None)
    return evaluate_features(
        train_x,
        train_y,
        test_x,
        test_y,
        num_classes=len(classes) if classes else None,
        probe_epochs=probe_epochs,
        knn_k=knn_k,
        seed=seed,
        progress=progress,
    )


def evaluate_features(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    *,
    num_classes: int | None = None,
    probe_epochs: int = 50,
    knn_k: int | None = 200,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """``linear_probe`` and ``knn`` of frozen features: the dictionary of
    ``evaluate_backbone``."""
    probe = linear_probe(
        train_x,
        train_y,
        test_x,
        test_y,
        epochs=probe_epochs,
        seed=seed,
        num_classes=num_classes,
        progress=progress,
    )
    out: dict[str, Any] = {
        "probe_final": probe["final"],
        "probe_best": probe["best"],
        "probe_per_epoch": probe["per_epoch"],
    }
    if knn_k is not None:
        k = min(knn_k, train_x.shape[0])
        out["knn"] = knn(train_x, train_y, test_x, test_y, k=k, num_classes=num_classes)
        out["knn_k"] = k
    return out
