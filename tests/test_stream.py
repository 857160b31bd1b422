"""Streamed ImageFolder data (linear_ssl.train.stream): crops seeded by (seed, epoch, index),
ranks' shares, the device half of the recipe (theory.md section 5; byol: [E]) and a
streamed training run that resumes bitwise (CPU)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from omegaconf import OmegaConf, open_dict

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

from linear_ssl.train import load_config, resume, train  # noqa: E402
from linear_ssl.train.augment import (  # noqa: E402
    build_augment,  # noqa: E402
    build_view,
    recipe_views,
)
from linear_ssl.train.data import dataset_stats, load_dataset  # noqa: E402
from linear_ssl.train.evaluate import extract_features, extract_loader_features  # noqa: E402
from linear_ssl.train.loop import build_model, evaluate_run  # noqa: E402
from linear_ssl.train.stream import (  # noqa: E402
    CenterCropFolder,
    CropFolder,
    EpochSampler,
    Stream,
    build_crop_free_augment,
    crop_box,
    eval_loader,
)

CLASSES = ("ant", "bee", "cat")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """3 classes x 8 images of 40 x 48 px (PNG and JPEG), random pixels."""
    root = tmp_path_factory.mktemp("imagefolder")
    rng = np.random.default_rng(0)
    for c in CLASSES:
        (root / "train" / c).mkdir(parents=True)
        for i in range(8):
            pixels = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
            ext = "png" if i % 2 else "jpg"
            Image.fromarray(pixels).save(root / "train" / c / f"{i}.{ext}")
    return root


def _stream_cfg(root, overrides=()):
    return load_config(
        None,
        [
            "data.name=imagefolder",
            f"data.root={root}",
            "data.stream=true",
            "data.workers=0",
            "augment.recipe=byol",
            "augment.image_size=16",
            "batch_size=8",
            *overrides,
        ],
    )


def test_crop_folder_labels_and_shapes(folder):
    """Labels follow the sorted class folders; items are two (3, S, S) uint8 crops."""
    data = CropFolder(folder, "train", 16)
    assert data.classes == list(CLASSES) and len(data) == 24
    assert data.labels == [i for i in range(3) for _ in range(8)]
    c1, c2, label = data[(0, 9)]
    assert c1.shape == c2.shape == (3, 16, 16) and c1.dtype == torch.uint8
    assert label == 1 and "bee" in data.files[9]
    assert not torch.equal(c1, c2)  # two independent crops


def test_a_zip_streams_the_same_crops_as_its_directory(folder, tmp_path):
    """An ImageFolder zip (under one top folder) gives the directory's classes and crops."""
    archive = shutil.make_archive(str(tmp_path / "set"), "zip", folder.parent, folder.name)
    zipped, plain = CropFolder(archive, "train", 16), CropFolder(folder, "train", 16)
    assert zipped.classes == plain.classes and zipped.labels == plain.labels
    for key in [(0, 0), (2, 13), (1, 23)]:
        pairs = zip(zipped[key][:2], plain[key][:2], strict=True)
        assert all(torch.equal(a, b) for a, b in pairs)
    batches = [
        list(Stream(_stream_cfg(r), torch.device("cpu")).batches(0)) for r in (archive, folder)
    ]
    assert all(torch.equal(a, b) for a, b in zip(*batches, strict=True))


def test_crop_box_scale_and_ratio_within_range():
    """RandomResizedCrop: area fraction in crop_scale and aspect in (3/4, 4/3), up to the
    rounding of the box to whole pixels; the box lies inside the image."""
    rng = np.random.default_rng(1)
    H, W, scale = 300, 400, (0.2, 0.6)
    for _ in range(500):
        top, left, h, w = crop_box(rng, H, W, scale)
        assert 0 <= top <= H - h and 0 <= left <= W - w
        assert scale[0] - 0.01 <= h * w / (H * W) <= scale[1] + 0.01
        assert 0.75 - 0.01 <= w / h <= 4 / 3 + 0.01


def test_crop_box_fallback_is_the_central_ratio_clamped_crop():
    """scale (1, 1) on a 100 x 400 image fits no box of aspect <= 4/3: the fallback is the
    central crop of height 100 and width round(100 * 4/3) = 133."""
    top, left, h, w = crop_box(np.random.default_rng(0), 100, 400, (1.0, 1.0))
    assert (top, left, h, w) == (0, (400 - 133) // 2, 100, 133)


def test_full_scale_crop_equals_the_resized_image(folder):
    """scale (1, 1) on a square image: the crop is the whole image resized (bilinear)."""
    root = folder.parent / "square"
    (root / "train" / "one").mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(2).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(root / "train" / "one" / "a.png")
    c1, c2, _ = CropFolder(root, "train", 16, (1.0, 1.0))[(3, 0)]
    expected = np.array(Image.fromarray(pixels).resize((16, 16), Image.Resampling.BILINEAR))
    assert torch.equal(c1, torch.from_numpy(expected).permute(2, 0, 1))
    assert torch.equal(c1, c2)


def test_center_crop_is_the_central_square_after_the_shorter_side_resize(folder):
    """Evaluation view: a 32 x 40 image at S = 16 and crop_fraction 0.5 keeps its size (its
    shorter side is already 16 / 0.5 = 32), so the view is rows 8..23, columns 12..27; at
    crop_fraction 1 the shorter side becomes 16 (bilinear) and the view its centre."""
    root = folder.parent / "wide"
    (root / "val" / "one").mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(3).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(root / "val" / "one" / "a.png")
    view, label = CenterCropFolder(root, "val", 16, crop_fraction=0.5)[0]
    assert label == 0 and view.dtype == torch.uint8
    assert torch.equal(view, torch.from_numpy(pixels[8:24, 12:28]).permute(2, 0, 1))
    view, _ = CenterCropFolder(root, "val", 16, crop_fraction=1.0)[0]
    resized = np.array(Image.fromarray(pixels).resize((20, 16), Image.Resampling.BILINEAR))
    assert torch.equal(view, torch.from_numpy(resized[:, 2:18]).permute(2, 0, 1))
    with pytest.raises(ValueError, match="crop_fraction=0 must lie in"):
        CenterCropFolder(root, "val", 16, crop_fraction=0)


def test_streamed_run_is_probed_at_the_end_as_its_resident_twin(tmp_path):
    """eval.at_end on a data.stream=true run: features of central crops read by workers.
    On 16 px images at S = 16 and crop_fraction 1 the crops are the images, so the streamed
    features equal those of the resident images, and eval.json equals the resident
    evaluation of the same checkpoint (data.stream=false), also on a fixed random subset
    (train_limit).
    """
    rng = np.random.default_rng(4)
    for split, n in (("train", 8), ("val", 4)):
        for c in CLASSES:
            (tmp_path / "set" / split / c).mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(tmp_path / "set" / split / c / f"{i}.png")
    overrides = [
        "data.test_split=val",
        "data.workers=2",
        "model.width=4",
        "model.projector_hidden=16",
        "model.projector_out=8",
        "record.progress=false",
        "max_steps=2",
        "eval.at_end=true",
        "eval.probe_epochs=3",
        "eval.knn_k=5",
        "eval.crop_fraction=1.0",
        f"run_dir={tmp_path / 'streamed'}",
    ]
    cfg = _stream_cfg(tmp_path / "set", overrides)
    backbone = build_model(cfg).backbone
    transform = build_augment("byol", 16, *dataset_stats("imagefolder")).eval_transform
    loader, classes = eval_loader(cfg, tmp_path / "set", "val", None, torch.device("cpu"))
    x, y = extract_loader_features(backbone, loader, transform)
    held = load_dataset("imagefolder", tmp_path / "set", "val", cache_dir=tmp_path / "cache")
    assert classes == held.classes and torch.equal(y, held.labels)
    assert torch.equal(x, extract_features(backbone, held.images, transform))

    streamed = train(cfg)
    at_end = json.loads((streamed / "eval.json").read_text())
    assert at_end["train_images"] == 24 and at_end["test_images"] == 12
    resident = tmp_path / "resident"
    shutil.copytree(streamed, resident)
    config = OmegaConf.load(resident / "config.yaml")
    config.data.stream = False
    OmegaConf.save(config, resident / "config.yaml")
    again = evaluate_run(resident)
    for key in ("probe_final", "probe_per_epoch", "knn"):
        assert again[key] == pytest.approx(at_end[key]), key
    subsets = [evaluate_run(run, train_limit=10) for run in (streamed, resident)]
    assert subsets[0]["train_images"] == subsets[1]["train_images"] == 10
    assert subsets[0]["probe_per_epoch"] == pytest.approx(subsets[1]["probe_per_epoch"])


def test_crops_are_the_same_for_0_and_2_workers_and_change_with_the_epoch(folder):
    """Crops seeded by (seed, epoch, index): the worker count does not change a batch; the
    next epoch draws other crops (and another order)."""
    batches = {}
    for workers in (0, 2):
        stream = Stream(_stream_cfg(folder, [f"data.workers={workers}"]), torch.device("cpu"))
        assert len(stream) == 3
        batches[workers] = [b for e in (0, 1) for b in stream.batches(e)]
    assert len(batches[0]) == 6
    for a, b in zip(batches[0], batches[2], strict=True):
        assert a.shape == (16, 3, 16, 16) and torch.equal(a, b)
    assert not torch.equal(batches[0][0], batches[0][3])


def test_resume_skips_batches_without_changing_the_rest(folder):
    """batches(epoch, start) are the epoch's batches from ``start`` on."""
    stream = Stream(_stream_cfg(folder), torch.device("cpu"))
    full, tail = list(stream.batches(1)), list(stream.batches(1, start=1))
    assert len(tail) == 2
    assert all(torch.equal(a, b) for a, b in zip(full[1:], tail, strict=True))


@pytest.mark.parametrize("n", [24, 26])
def test_rank_shares_are_disjoint_equal_and_cover(n):
    """3 ranks: equal shares, pairwise disjoint, covering all but the n % 3 dropped images;
    one rank's share is the seeded epoch permutation itself."""
    shares = [[i for _, i in EpochSampler(n, seed=5, rank=r, world_size=3)] for r in range(3)]
    assert [len(s) for s in shares] == [n // 3] * 3
    union = set().union(*map(set, shares))
    assert len(union) == 3 * (n // 3) and union <= set(range(n))
    whole = [i for _, i in EpochSampler(n, seed=5)]
    assert sorted(whole) == list(range(n))
    assert shares[1] == whole[1 : 3 * (n // 3) : 3]


def test_crop_free_augment_keeps_the_recipe_stages_and_routes_the_halves():
    """The device half is the recipe's views without their crop; view 1 acts on the first
    half and view 2 on the second: black is a fixed point of every remaining stage, so a
    black half comes out as exactly -mean/std."""
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    aug = build_crop_free_augment("byol", 16, mean, std)
    for view, recipe in zip((aug.view1, aug.view2), recipe_views("byol"), strict=True):
        names = [n for n, _ in build_view(recipe, 16).named_children()]
        assert [n for n, _ in view.named_children()] == [n for n in names if n != "crop"]
    black = -torch.tensor(mean).view(1, 3, 1, 1) / torch.tensor(std).view(1, 3, 1, 1)
    zeros, white = torch.zeros(4, 3, 16, 16, dtype=torch.uint8), torch.full((4, 3, 16, 16), 255)
    v1, v2 = aug.two_views(torch.cat([zeros, white.to(torch.uint8)]))
    assert torch.allclose(v1, black.expand_as(v1), atol=1e-6)
    assert not torch.allclose(v2, black.expand_as(v2), atol=1e-2)
    v1, v2 = aug.two_views(torch.cat([white.to(torch.uint8), zeros]))
    assert torch.allclose(v2, black.expand_as(v2), atol=1e-6)


def test_streamed_run_writes_records_and_resumes_bitwise(folder, tmp_path):
    """A data.stream=true run (byol recipe, tiny ResNet) crosses an epoch, writes metrics,
    spectra and checkpoints; resumed from its step-2 checkpoint (mid-epoch: the sampler
    skips the finished batch) it ends bitwise equal (CPU)."""
    overrides = [
        "model.width=4",
        "model.projector_hidden=16",
        "model.projector_out=8",
        "record.progress=false",
        "record.every=2",
        "record.log_every=1",
        "checkpoint.every=2",
        "checkpoint.keep=5",
        "epochs=2",
        "max_steps=5",
        f"run_dir={tmp_path / 'full'}",
    ]
    full = train(_stream_cfg(folder, overrides))
    steps = [json.loads(line)["step"] for line in (full / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5]
    assert sorted(p.name for p in (full / "spectra").iterdir()) == [
        f"step_{s:08d}.npz" for s in (0, 2, 4)
    ]
    cut = tmp_path / "cut"
    shutil.copytree(full, cut)
    for step in (4, 5):
        next((cut / "checkpoints").glob(f"*{step}.pt")).unlink()
    resume(cut)
    a, b = (
        torch.load(sorted((d / "checkpoints").glob("*.pt"))[-1], weights_only=True)
        for d in (full, cut)
    )
    assert a["step"] == b["step"] == 5
    tensors = {k: v for k, v in a["method"].items() if isinstance(v, torch.Tensor)}
    assert len(tensors) > 10
    for key, value in tensors.items():
        assert torch.equal(value, b["method"][key]), key
    losses = [
        [json.loads(line)["loss"] for line in (d / "metrics.jsonl").read_text().splitlines()]
        for d in (full, cut)
    ]
    assert losses[0] == losses[1]


def test_bad_folders_give_one_line_errors(folder, tmp_path):
    """A missing folder, an empty split and an undecodable image: one-line errors."""
    with pytest.raises(FileNotFoundError, match="data.root") as err:
        CropFolder(tmp_path / "nowhere", "train", 16)
    assert "\n" not in str(err.value)
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no images found") as err:
        CropFolder(tmp_path / "empty", "train", 16)
    assert "\n" not in str(err.value)
    (tmp_path / "bad" / "train" / "x").mkdir(parents=True)
    (tmp_path / "bad" / "train" / "x" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="cannot decode image .*broken.jpg") as err:
        CropFolder(tmp_path / "bad", "train", 16)[(0, 0)]
    assert "\n" not in str(err.value)
    for c in CLASSES:  # the same through worker processes
        (tmp_path / "bad" / "train" / c).mkdir()
        for i in range(3):
            shutil.copy(
                next((folder / "train" / c).glob("*.png")), tmp_path / f"bad/train/{c}/{i}.png"
            )
    bad = _stream_cfg(tmp_path / "bad", ["data.workers=2", "batch_size=2"])  # decodes all 10
    stream = Stream(bad, torch.device("cpu"))
    with pytest.raises(ValueError, match="^cannot decode image .*broken.jpg") as err:
        list(stream.batches(0))
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="data.name=imagefolder"):
        Stream(_stream_cfg(folder, ["data.name=embedded"]), torch.device("cpu"))
    with pytest.raises(ValueError, match="data.limit applies to resident data only"):
        Stream(_stream_cfg(folder, ["data.limit=10"]), torch.device("cpu"))
    cfg = _stream_cfg(folder)
    with open_dict(cfg):  # the key of the DDP schema (or added here where it is absent)
        OmegaConf.update(cfg, "distributed.global_augment", True, force_add=True)
    with pytest.raises(ValueError, match="global_augment=true needs resident data"):
        Stream(cfg, torch.device("cpu"))
