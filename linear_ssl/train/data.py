"""Image data sets for the trainer, as whole uint8 tensors (theory.md section 5).

Every reader returns an :class:`ImageSet`: all images of one split as one contiguous
``(N, 3, H, W)`` uint8 tensor, so the loop can keep a data set on its device and augment
whole batches there (``augment.py``). Formats, all official:

- ``cifar10`` / ``cifar100``: the python pickled batches (``cifar-10-batches-py/``,
  ``cifar-100-python/`` under ``root``);
- ``stl10``: the binary release (``stl10_binary/``); splits ``train``, ``test``,
  ``unlabeled`` and ``train+unlabeled`` (pre-training, section 5);
- ``imagefolder``: ``root/<split>/<class>/*.jpg|png``, or a ``.zip`` with that layout,
  possibly under one top folder;
- ``embedded``: the 6,000-image CIFAR-10 subset shipped in the package
  (``scripts/make_embedded_subset.py``); splits ``train`` and ``test``.

JPEG/PNG sets are decoded once into an uint8 ``.npz`` cache (``cache_dir``, else
``$LINEAR_SSL_CACHE``, else ``~/.cache/linear_ssl``) keyed by path, size and mtime; the
pickled and binary formats already hold raw uint8 pixels and are read directly.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import re
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath

import numpy as np
import torch

DATASETS = ("cifar10", "cifar100", "stl10", "imagefolder", "embedded")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
EMBEDDED_FILE = "cifar10-subset.zip"

_CIFAR10_STATS = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
_STATS = {
    "cifar10": _CIFAR10_STATS,
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "stl10": ((0.4467, 0.4398, 0.4066), (0.2603, 0.2566, 0.2713)),
    "imagefolder": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # ImageNet
    "embedded": _CIFAR10_STATS,
}


@dataclass(frozen=True)
class Source:
    """Where ``download=True`` fetches an official archive from, and its md5."""

    url: str
    md5: str


# Official archives and md5s; tests point these at file:// URLs.
SOURCES: dict[str, Source] = {
    "cifar10": Source(
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a",
    ),
    "cifar100": Source(
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "eb9058c3a382ffc7106e4002c42a8d85",
    ),
    "stl10": Source(
        "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",
        "91f7769df0f17e558f3565bffb0c7dfb",
    ),
}


@dataclass
class ImageSet:
    """One split: ``images`` (N, 3, H, W) uint8, ``labels`` (N,) int64 (-1: unlabeled)."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    name: str

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4 or self.images.shape[1] != 3:
            raise ValueError(
                f"ImageSet images must be (N, 3, H, W) uint8, got {tuple(self.images.shape)} "
                f"{self.images.dtype}"
            )
        if self.labels.dtype != torch.int64 or self.labels.shape != self.images.shape[:1]:
            raise ValueError(
                f"ImageSet labels must be ({self.images.shape[0]},) int64, got "
                f"{tuple(self.labels.shape)} {self.labels.dtype}"
            )
        self.images = self.images.contiguous()

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device: str | torch.device) -> ImageSet:
        """A copy of this set with its tensors on ``device``."""
        return ImageSet(
            self.images.to(device, copy=True),
            self.labels.to(device, copy=True),
            list(self.classes),
            self.name,
        )


def dataset_stats(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std) of pixels in [0, 1] used to normalise data set ``name``."""
    if name not in _STATS:
        raise ValueError(f"unknown data set {name!r}: choose one of {', '.join(DATASETS)}")
    return _STATS[name]


def load_dataset(
    name: str,
    root: str | Path | None,
    split: str,
    *,
    download: bool = False,
    cache_dir: str | Path | None = None,
) -> ImageSet:
    """Load split ``split`` of data set ``name`` (see the module docstring) as an ImageSet."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}: choose one of {', '.join(DATASETS)}")
    if name == "embedded":
        _check_split(name, split, ("train", "test"))
        package_file = resources.files("linear_ssl").joinpath("data").joinpath(EMBEDDED_FILE)
        with resources.as_file(package_file) as path:
            if not path.is_file():
                raise FileNotFoundError(
                    f"embedded subset not found at {path}: reinstall linear_ssl or run "
                    "scripts/make_embedded_subset.py"
                )
            return _load_imagefolder(path, split, _cache_dir(cache_dir), "embedded")
    if root is None:
        raise ValueError(f"data set {name!r} needs a root directory: pass data.root=...")
    root = Path(root).expanduser()
    if name == "imagefolder":
        if download:
            raise ValueError(
                "download=True is only available for cifar10, cifar100 and stl10, not imagefolder"
            )
        return _load_imagefolder(root, split, _cache_dir(cache_dir), "imagefolder")
    reader = {"cifar10": _load_cifar10, "cifar100": _load_cifar100, "stl10": _load_stl10}[name]
    return reader(root, split, download)


# ---------------------------------------------------------------- CIFAR (pickled batches)

_CIFAR_LAYOUT = {
    # name: (folder, train files, test file, meta file, label key, class-names key)
    "cifar10": (
        "cifar-10-batches-py",
        [f"data_batch_{i}" for i in range(1, 6)],
        "test_batch",
        "batches.meta",
        b"labels",
        b"label_names",
    ),
    "cifar100": (
        "cifar-100-python",
        ["train"],
        "test",
        "meta",
        b"fine_labels",
        b"fine_label_names",
    ),
}
_TITLES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "stl10": "STL-10"}


def _load_cifar10(root: Path, split: str, download: bool) -> ImageSet:
    return _load_cifar("cifar10", root, split, download)


def _load_cifar100(root: Path, split: str, download: bool) -> ImageSet:
    return _load_cifar("cifar100", root, split, download)


def _load_cifar(name: str, root: Path, split: str, download: bool) -> ImageSet:
    _check_split(name, split, ("train", "test"))
    folder, train_files, test_file, meta_file, label_key, names_key = _CIFAR_LAYOUT[name]
    needed = [*train_files, test_file, meta_file]
    base = _ensure_files(name, root, folder, needed, download)
    classes = [c.decode() for c in _read_pickle(name, base / meta_file, [names_key])[names_key]]
    images, labels = [], []
    for file in train_files if split == "train" else [test_file]:
        batch = _read_pickle(name, base / file, [b"data", label_key])
        data = np.asarray(batch[b"data"])
        batch_labels = np.asarray(batch[label_key], dtype=np.int64)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
            raise ValueError(
                f"{_TITLES[name]} file {base / file} holds data of shape {data.shape} "
                f"{data.dtype}, expected (N, 3072) uint8: the file is damaged, download it again"
            )
        if batch_labels.shape != (data.shape[0],):
            raise ValueError(
                f"{_TITLES[name]} file {base / file} has {data.shape[0]} images but "
                f"{batch_labels.size} labels: the file is damaged, download it again"
            )
        images.append(data.reshape(-1, 3, 32, 32))  # row-major R, G, B planes of 32 x 32
        labels.append(batch_labels)
    labels_all = np.concatenate(labels)
    _check_labels(name, labels_all, len(classes), base)
    return ImageSet(
        torch.from_numpy(np.concatenate(images)),
        torch.from_numpy(labels_all),
        classes,
        name,
    )


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only plain containers and numpy arrays: a data file cannot run code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # bytes in pickles of protocol 2 written by Python 3
    }

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle protocol
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"forbidden object {module}.{name}")


def _read_pickle(name: str, path: Path, keys: list[bytes]) -> dict:
    try:
        with open(path, "rb") as f:
            content = _ArrayUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise ValueError(
            f"{_TITLES[name]} file {path} is corrupt or truncated ({type(err).__name__}): "
            "delete it and download the data set again (download=True)"
        ) from None
    if not isinstance(content, dict) or any(k not in content for k in keys):
        raise ValueError(
            f"{_TITLES[name]} file {path} lacks the keys {[k.decode() for k in keys]} of the "
            "official python release: delete it and download the data set again (download=True)"
        )
    return content


# ---------------------------------------------------------------- STL-10 (binary)

_STL_PIXELS = 3 * 96 * 96
_STL_SPLITS = {
    "train": ["train"],
    "test": ["test"],
    "unlabeled": ["unlabeled"],
    "train+unlabeled": ["train", "unlabeled"],
}


def _load_stl10(root: Path, split: str, download: bool) -> ImageSet:
    _check_split("stl10", split, tuple(_STL_SPLITS))
    parts = _STL_SPLITS[split]
    needed = ["class_names.txt"]
    for part in parts:
        needed += [f"{part}_X.bin"] + ([] if part == "unlabeled" else [f"{part}_y.bin"])
    base = _ensure_files("stl10", root, "stl10_binary", needed, download)
    classes = (base / "class_names.txt").read_text().split()
    images, labels = [], []
    for part in parts:
        x_file = base / f"{part}_X.bin"
        size = x_file.stat().st_size
        if size == 0 or size % _STL_PIXELS:
            raise ValueError(
                f"STL-10 file {x_file} has {size} bytes, not a positive multiple of "
                f"{_STL_PIXELS} (3 x 96 x 96): it is truncated, download it again"
            )
        # Each image is stored column-major: channel, then column, then row. Memory-mapped,
        # so that only the concatenated copy below is held in memory.
        raw = np.memmap(x_file, dtype=np.uint8, mode="r").reshape(-1, 3, 96, 96)
        images.append(raw.transpose(0, 1, 3, 2))
        n = images[-1].shape[0]
        if part == "unlabeled":
            labels.append(np.full(n, -1, dtype=np.int64))
            continue
        part_labels = np.fromfile(base / f"{part}_y.bin", dtype=np.uint8).astype(np.int64) - 1
        if part_labels.shape != (n,):
            raise ValueError(
                f"STL-10 file {base / f'{part}_y.bin'} has {part_labels.size} labels for {n} "
                f"images in {part}_X.bin: the files are damaged, download them again"
            )
        _check_labels("stl10", part_labels, len(classes), base)
        labels.append(part_labels)
    return ImageSet(
        torch.from_numpy(np.concatenate(images)),  # a C-contiguous copy
        torch.from_numpy(np.concatenate(labels)),
        classes,
        "stl10",
    )


# ---------------------------------------------------------------- ImageFolder (dir or zip)


def _load_imagefolder(root: Path, split: str, cache_dir: Path, name: str) -> ImageSet:
    if root.is_file() and root.suffix.lower() == ".zip":
        listing, stamp = _zip_listing(root, split)
    elif root.is_dir():
        listing, stamp = _dir_listing(root, split)
    else:
        raise FileNotFoundError(
            f"image folder not found: expected a directory or .zip at {root} holding "
            f"{split}/<class>/*.jpg|png; pass data.root=..."
        )
    cache = cache_dir / f"{name}-{split.replace('/', '_')}-{_digest(stamp)}.npz"
    cached = _read_cache(cache)
    if cached is not None:
        return ImageSet(*cached, name)
    classes = sorted(listing)
    images, labels = [], []
    is_zip = root.is_file()
    with zipfile.ZipFile(root) if is_zip else contextlib.nullcontext() as archive:
        for label, cls in enumerate(classes):
            for member in listing[cls]:
                data = archive.read(member) if is_zip else Path(member).read_bytes()
                images.append(_decode(data, f"{root}:{member}" if is_zip else member))
                labels.append(label)
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise ValueError(
            f"images under {root} ({split}) have mixed sizes {sorted(shapes)[:3]}: resize them "
            "to one size first"
        )
    image_array = np.stack(images).transpose(0, 3, 1, 2)
    label_array = np.asarray(labels, dtype=np.int64)
    _write_cache(cache, image_array, label_array, classes)
    return ImageSet(
        torch.from_numpy(np.ascontiguousarray(image_array)),
        torch.from_numpy(label_array),
        classes,
        name,
    )


def _zip_listing(path: Path, split: str) -> tuple[dict[str, list[str]], str]:
    """{class: sorted members} of ``[top/]split/class/file`` in zip ``path``, and a cache stamp."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [(i.filename, i.is_dir()) for i in archive.infolist()]
    except (zipfile.BadZipFile, OSError) as err:
        raise ValueError(
            f"{path} is not a readable zip file ({err}): download or build it again"
        ) from None
    listing: dict[str, list[str]] = {}
    tops = set()
    for member, is_dir in members:
        path_in_zip = PurePosixPath(member)
        parts = path_in_zip.parts + (("",) if is_dir else ())  # a folder: as if holding a file
        if len(parts) == 3 and parts[0] == split:
            tops.add("")
        elif len(parts) == 4 and parts[1] == split:
            tops.add(parts[0])
        else:
            continue
        files = listing.setdefault(parts[-2], [])
        if not is_dir and path_in_zip.suffix.lower() in IMAGE_EXTENSIONS:
            files.append(member)
    if len(tops) > 1:
        raise ValueError(
            f"zip {path} holds split {split!r} under several top folders {sorted(tops)}: keep one"
        )
    _check_listing(listing, f"zip {path}", split)
    stat = path.stat()
    stamp = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{split}"
    return {c: sorted(m) for c, m in listing.items()}, stamp


def _dir_listing(root: Path, split: str) -> tuple[dict[str, list[str]], str]:
    """{class: sorted file paths} of ``root/split/class/file``, and a cache stamp."""
    split_dir = root / split
    listing: dict[str, list[str]] = {}
    stamp = [str(split_dir.resolve())]
    if split_dir.is_dir():
        for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            files = sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
            listing[class_dir.name] = [str(p) for p in files]
            for p in files:
                stat = p.stat()
                stamp.append(f"{p.name}|{stat.st_size}|{stat.st_mtime_ns}")
    _check_listing(listing, f"directory {root}", split)
    return listing, "\n".join(stamp)


def _check_listing(listing: dict[str, list[str]], where: str, split: str) -> None:
    if not listing:
        raise FileNotFoundError(
            f"no images found in {where}: expected {split}/<class>/*.jpg|png "
            "(ImageFolder layout, optionally under one top folder in a zip)"
        )
    empty = sorted(c for c, files in listing.items() if not files)
    if empty:
        raise ValueError(
            f"class folders {empty} of {where}/{split} hold no .jpg/.png image: fill or remove them"
        )


def decode_error(where: str, err: Exception) -> ValueError:
    """The one-line error of an image that does not decode: it names the file, never the
    in-memory buffer Pillow read it from (whose repr is an object address)."""
    from PIL import UnidentifiedImageError

    if isinstance(err, UnidentifiedImageError):
        problem = "not an image format Pillow recognises"
    else:
        problem = re.sub(r"<[^<>]* at 0x[0-9a-fA-F]+>|<zipfile\.ZipExtFile[^<>]*>", "it", str(err))
    return ValueError(f"cannot decode image {where} ({problem}): replace or remove it")


def _decode(data: bytes, where: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise decode_error(where, err) from None


# ---------------------------------------------------------------- cache


def _cache_dir(cache_dir: str | Path | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    return Path(os.environ.get("LINEAR_SSL_CACHE", "~/.cache/linear_ssl")).expanduser()


def _digest(stamp: str) -> str:
    return hashlib.sha1(stamp.encode()).hexdigest()[:16]


def _read_cache(path: Path) -> tuple[torch.Tensor, torch.Tensor, list[str]] | None:
    """The cached (images, labels, classes), or None when absent or unreadable."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as cache:
            return (
                torch.from_numpy(cache["images"]),
                torch.from_numpy(cache["labels"]),
                [str(c) for c in cache["classes"]],
            )
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None  # a damaged cache is rebuilt from the source


def _write_cache(path: Path, images: np.ndarray, labels: np.ndarray, classes: list[str]) -> None:
    """Write the cache atomically (temporary file + rename); an unwritable cache is skipped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, images=np.ascontiguousarray(images), labels=labels, classes=classes)
        os.replace(tmp, path)
    except OSError:
        return


# ---------------------------------------------------------------- download and checks


def _ensure_files(name: str, root: Path, folder: str, needed: list[str], download: bool) -> Path:
    """``root/folder`` once every file of ``needed`` is there, downloading it if asked."""
    base = root / folder
    missing = [f for f in needed if not (base / f).is_file()]
    if missing and download:
        _download(name, root)
        missing = [f for f in needed if not (base / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{_TITLES[name]} not found: expected {base}/ with {', '.join(needed)} "
            f"(missing {', '.join(missing)}); download=True fetches it from "
            f"{SOURCES[name].url}, or pass data.root=..."
        )
    return base


def _download(name: str, root: Path) -> None:
    """Fetch the official archive of ``name`` into ``root``, check its md5, extract it."""
    source = SOURCES[name]
    root.mkdir(parents=True, exist_ok=True)
    archive = root / Path(source.url).name
    md5 = hashlib.md5()
    fd, tmp = tempfile.mkstemp(dir=root, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(source.url) as response:
            while chunk := response.read(1 << 20):
                md5.update(chunk)
                out.write(chunk)
        if md5.hexdigest() != source.md5:
            raise ValueError(
                f"checksum mismatch for {source.url}: md5 {md5.hexdigest()}, expected "
                f"{source.md5}; the download is damaged, try again"
            )
        os.replace(tmp, archive)
    except OSError as err:
        raise OSError(
            f"cannot download {source.url} ({err}): fetch and extract it by hand into {root}"
        ) from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")
    except (tarfile.TarError, OSError) as err:
        raise ValueError(f"cannot extract {archive} ({err}): delete it and retry") from None


def _check_split(name: str, split: str, splits: tuple[str, ...]) -> None:
    if split not in splits:
        raise ValueError(f"{name} has no split {split!r}: choose one of {', '.join(splits)}")


def _check_labels(name: str, labels: np.ndarray, n_classes: int, base: Path) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(
            f"{_TITLES[name]} labels under {base} run from {labels.min()} to {labels.max()}, "
            f"outside the {n_classes} classes: the files are damaged, download them again"
        )


def subset_indices(n: int, limit: int | None) -> torch.Tensor | None:
    """The indices of a fixed random subset of ``limit`` of ``n`` rows (the same for every
    seed; files are often sorted by class, so the first rows would be one class), in their
    original order; None when ``limit`` keeps them all."""
    if limit is None or limit >= n:
        return None
    keep = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:limit]
    return keep.sort().values


def subset(x: torch.Tensor, limit: int | None) -> torch.Tensor:
    """``x`` restricted to the rows of ``subset_indices``."""
    keep = subset_indices(x.shape[0], limit)
    return x if keep is None else x[keep]
