"""Readers of linear_ssl.train.data on small files in the official byte formats.

The data sets are those of theory.md section 5 (CIFAR-10, STL-10; CIFAR-100 and
ImageFolder beside them); every test builds its own files under tmp_path.
"""

import hashlib
import io
import pickle
import tarfile
import zipfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

from linear_ssl.train import data  # noqa: E402
from linear_ssl.train.data import ImageSet, dataset_stats, load_dataset  # noqa: E402

pytestmark = pytest.mark.torch

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer"]
CIFAR10_CLASSES += ["dog", "frog", "horse", "ship", "truck"]


def pattern(k: int, c, y, x):
    """A pixel value that tells image k, channel c, row y and column x apart."""
    return (k * 11 + c * 100 + y * 7 + x * 3) % 256


def expected_images(keys: list[int], size: int) -> np.ndarray:
    c, y, x = np.meshgrid(np.arange(3), np.arange(size), np.arange(size), indexing="ij")
    return np.stack([pattern(k, c, y, x) for k in keys]).astype(np.uint8)


def cifar_row(k: int) -> np.ndarray:
    """Official CIFAR row: byte i is channel i // 1024, row (i % 1024) // 32, column i % 32."""
    i = np.arange(3072)
    return pattern(k, i // 1024, (i % 1024) // 32, i % 32).astype(np.uint8)


def stl_bytes(k: int) -> np.ndarray:
    """Official STL-10 image: column-major, byte i is channel i // 9216, column, then row."""
    i = np.arange(3 * 96 * 96)
    return pattern(k, i // 9216, i % 96, (i % 9216) // 96).astype(np.uint8)


def dump(path, content) -> None:
    with open(path, "wb") as f:
        pickle.dump(content, f, protocol=2)


def make_cifar10(root, per_batch=2):
    """cifar-10-batches-py with 5 x per_batch train images and per_batch test images."""
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    dump(base / "batches.meta", {b"label_names": [c.encode() for c in CIFAR10_CLASSES]})
    k = 0
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        keys = list(range(k, k + per_batch))
        rows = np.stack([cifar_row(j) for j in keys])
        dump(base / name, {b"data": rows, b"labels": [j % 10 for j in keys]})
        k += per_batch
    return base


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message and message
    return message


# ---------------------------------------------------------------- CIFAR


def test_cifar10_pixels_and_labels_land_in_place(tmp_path):
    make_cifar10(tmp_path)
    train = load_dataset("cifar10", tmp_path, "train")
    test = load_dataset("cifar10", tmp_path, "test")
    assert len(train) == 10 and len(test) == 2 and train.classes == CIFAR10_CLASSES
    np.testing.assert_array_equal(train.images.numpy(), expected_images(list(range(10)), 32))
    np.testing.assert_array_equal(test.images.numpy(), expected_images([10, 11], 32))
    assert train.labels.tolist() == [k % 10 for k in range(10)] and test.labels.dtype == torch.int64
    assert train.images.is_contiguous() and train.name == "cifar10"


def test_cifar100_reads_fine_labels(tmp_path):
    base = tmp_path / "cifar-100-python"
    base.mkdir()
    names = [f"class{i:02d}".encode() for i in range(100)]
    dump(base / "meta", {b"fine_label_names": names, b"coarse_label_names": names[:20]})
    for name, keys in [("train", [0, 1, 2]), ("test", [3])]:
        rows = np.stack([cifar_row(k) for k in keys])
        labels = [97, 5, 42] if name == "train" else [99]
        dump(base / name, {b"data": rows, b"fine_labels": labels, b"coarse_labels": [0] * 3})
    train = load_dataset("cifar100", tmp_path, "train")
    assert train.labels.tolist() == [97, 5, 42] and len(train.classes) == 100
    np.testing.assert_array_equal(train.images.numpy(), expected_images([0, 1, 2], 32))


def test_cifar_missing_says_what_where_and_how(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("cifar10", tmp_path, "train")
    message = one_line(err)
    assert "CIFAR-10 not found" in message and str(tmp_path / "cifar-10-batches-py") in message
    assert "data_batch_5" in message and data.SOURCES["cifar10"].url in message
    base = make_cifar10(tmp_path)
    (base / "data_batch_4").unlink()  # partial
    with pytest.raises(FileNotFoundError, match="missing data_batch_4") as err:
        load_dataset("cifar10", tmp_path, "train")
    one_line(err)


@pytest.mark.parametrize(
    "damage, match",
    [
        ("truncate", "corrupt or truncated"),
        ("code", "corrupt or truncated"),
        ("shape", r"expected \(N, 3072\) uint8"),
        ("labels", "2 images but 3 labels"),
        ("keys", "lacks the keys"),
        ("label_range", "outside the 10 classes"),
    ],
)
def test_cifar_damaged_files_give_one_line_errors(tmp_path, damage, match):
    base = make_cifar10(tmp_path)
    target = base / "data_batch_3"
    rows = np.stack([cifar_row(0), cifar_row(1)])
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:1000])
    elif damage == "code":  # a pickle that would run a command is refused, not run
        target.write_bytes(pickle.dumps({b"data": print}, protocol=2))
    elif damage == "shape":
        dump(target, {b"data": rows[:, :3000], b"labels": [0, 1]})
    elif damage == "labels":
        dump(target, {b"data": rows, b"labels": [0, 1, 2]})
    elif damage == "keys":
        dump(target, {b"pixels": rows, b"labels": [0, 1]})
    else:
        dump(target, {b"data": rows, b"labels": [0, 10]})
    with pytest.raises(ValueError, match=match) as err:
        load_dataset("cifar10", tmp_path, "train")
    one_line(err)


def test_download_verifies_md5_and_extracts(tmp_path, monkeypatch):
    source_dir = tmp_path / "source"
    make_cifar10(source_dir)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source_dir / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    root = tmp_path / "root"

    monkeypatch.setitem(data.SOURCES, "cifar10", data.Source(archive.as_uri(), "0" * 32))
    with pytest.raises(ValueError, match=f"checksum mismatch.*md5 {md5}") as err:
        load_dataset("cifar10", root, "train", download=True)
    one_line(err)
    assert not (root / "cifar-10-batches-py").exists() and not list(root.glob("*.part"))

    monkeypatch.setitem(data.SOURCES, "cifar10", data.Source((tmp_path / "no.tgz").as_uri(), md5))
    with pytest.raises(OSError, match="cannot download .*no.tgz") as err:
        load_dataset("cifar10", root, "train", download=True)
    one_line(err)

    monkeypatch.setitem(data.SOURCES, "cifar10", data.Source(archive.as_uri(), md5))
    train = load_dataset("cifar10", root, "train", download=True)
    np.testing.assert_array_equal(train.images.numpy(), expected_images(list(range(10)), 32))


# ---------------------------------------------------------------- STL-10


def make_stl10(root, n_train=3, n_test=2, n_unlabeled=2):
    base = root / "stl10_binary"
    base.mkdir(parents=True)
    (base / "class_names.txt").write_text("\n".join(f"c{i}" for i in range(10)) + "\n")
    k = 0
    for part, n in [("train", n_train), ("test", n_test), ("unlabeled", n_unlabeled)]:
        np.concatenate([stl_bytes(j) for j in range(k, k + n)]).tofile(base / f"{part}_X.bin")
        if part != "unlabeled":
            np.array([(j % 10) + 1 for j in range(k, k + n)], np.uint8).tofile(
                base / f"{part}_y.bin"
            )
        k += n
    return base


def test_stl10_column_major_pixels_and_splits(tmp_path):
    make_stl10(tmp_path)
    train = load_dataset("stl10", tmp_path, "train")
    np.testing.assert_array_equal(train.images.numpy(), expected_images([0, 1, 2], 96))
    assert train.labels.tolist() == [0, 1, 2]  # files hold 1..10
    both = load_dataset("stl10", tmp_path, "train+unlabeled")
    np.testing.assert_array_equal(both.images.numpy(), expected_images([0, 1, 2, 5, 6], 96))
    assert both.labels.tolist() == [0, 1, 2, -1, -1] and both.images.is_contiguous()
    assert load_dataset("stl10", tmp_path, "test").labels.tolist() == [3, 4]


def test_stl10_damaged_files_give_one_line_errors(tmp_path):
    base = make_stl10(tmp_path)
    raw = (base / "train_X.bin").read_bytes()
    (base / "train_X.bin").write_bytes(raw[:-100])
    with pytest.raises(ValueError, match="truncated") as err:
        load_dataset("stl10", tmp_path, "train")
    one_line(err)
    (base / "train_X.bin").write_bytes(raw)
    np.array([1, 2], np.uint8).tofile(base / "train_y.bin")
    with pytest.raises(ValueError, match="2 labels for 3 images") as err:
        load_dataset("stl10", tmp_path, "train")
    one_line(err)
    (base / "unlabeled_X.bin").unlink()
    with pytest.raises(FileNotFoundError, match="STL-10 not found.*unlabeled_X.bin") as err:
        load_dataset("stl10", tmp_path, "unlabeled")
    one_line(err)
    with pytest.raises(ValueError, match="no split 'val'"):
        load_dataset("stl10", tmp_path, "val")


# ---------------------------------------------------------------- ImageFolder


def png_bytes(k: int, size: int = 8) -> bytes:
    image = expected_images([k], size)[0].transpose(1, 2, 0)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


LAYOUT = {"cat": [0, 1], "ant": [2], "bee": [3, 4]}  # class: pattern keys


def write_folder(root, split="train", layout=LAYOUT):
    for cls, keys in layout.items():
        (root / split / cls).mkdir(parents=True)
        for k in keys:
            (root / split / cls / f"{k:04d}.png").write_bytes(png_bytes(k))


def write_zip(path, top="", layout=LAYOUT, split="train"):
    with zipfile.ZipFile(path, "w") as archive:
        for cls, keys in layout.items():
            archive.writestr(f"{top}{split}/{cls}/", b"")
            for k in keys:
                archive.writestr(f"{top}{split}/{cls}/{k:04d}.png", png_bytes(k))


def check_layout(images: ImageSet) -> None:
    """Classes sorted by name, images in file order within each class."""
    assert images.classes == ["ant", "bee", "cat"]
    assert images.labels.tolist() == [0, 1, 1, 2, 2]
    np.testing.assert_array_equal(images.images.numpy(), expected_images([2, 3, 4, 0, 1], 8))


@pytest.mark.parametrize("kind", ["dir", "zip", "zip-top"])
def test_imagefolder_dir_and_zip_read_pixels_exactly(tmp_path, kind):
    if kind == "dir":
        write_folder(tmp_path / "set")
        root = tmp_path / "set"
    else:
        root = tmp_path / "set.zip"
        write_zip(root, top="cifar10-jpeg/" if kind == "zip-top" else "")
    check_layout(load_dataset("imagefolder", root, "train", cache_dir=tmp_path / "cache"))


def test_imagefolder_cache_is_used_and_follows_changes(tmp_path, monkeypatch):
    root = tmp_path / "set.zip"
    write_zip(root)
    cache = tmp_path / "cache"
    first = load_dataset("imagefolder", root, "train", cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 1 and not list(cache.glob("*.tmp"))

    def no_decoding(*args):
        raise AssertionError("decoded although cached")

    with monkeypatch.context() as patch:
        patch.setattr(data, "_decode", no_decoding)
        again = load_dataset("imagefolder", root, "train", cache_dir=cache)
    assert torch.equal(first.images, again.images) and again.classes == first.classes
    # A changed source (size, mtime) is decoded afresh.
    write_zip(root, layout={"cat": [5], "ant": [6]})
    changed = load_dataset("imagefolder", root, "train", cache_dir=cache)
    np.testing.assert_array_equal(changed.images.numpy(), expected_images([6, 5], 8))
    # A damaged cache file is rebuilt, not trusted.
    for path in cache.glob("*.npz"):
        path.write_bytes(b"junk")
    np.testing.assert_array_equal(
        load_dataset("imagefolder", root, "train", cache_dir=cache).images.numpy(),
        expected_images([6, 5], 8),
    )


def test_cache_dir_defaults_to_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LINEAR_SSL_CACHE", str(tmp_path / "env-cache"))
    write_folder(tmp_path / "set")
    load_dataset("imagefolder", tmp_path / "set", "train")
    assert len(list((tmp_path / "env-cache").glob("imagefolder-train-*.npz"))) == 1


@pytest.mark.parametrize(
    "damage, error, match",
    [
        ("bad-zip", ValueError, "not a readable zip"),
        ("empty-class-dir", ValueError, r"class folders \['dog'\].*hold no"),
        ("empty-class-zip", ValueError, r"class folders \['dog'\].*hold no"),
        ("no-split", FileNotFoundError, "no images found.*test/<class>"),
        ("missing", FileNotFoundError, "image folder not found"),
        ("undecodable", ValueError, "cannot decode image"),
        ("mixed-sizes", ValueError, "mixed sizes"),
        ("two-tops", ValueError, "several top folders"),
    ],
)
def test_imagefolder_bad_inputs_give_one_line_errors(tmp_path, damage, error, match):
    root, split = tmp_path / "set", "train"
    if damage == "bad-zip":
        root = tmp_path / "set.zip"
        root.write_bytes(b"PK\x03\x04 not really a zip")
    elif damage == "empty-class-dir":
        write_folder(root, layout={**LAYOUT, "dog": []})
    elif damage == "empty-class-zip":
        root = tmp_path / "set.zip"
        write_zip(root, layout={**LAYOUT, "dog": []})
    elif damage == "no-split":
        write_folder(root)
        split = "test"
    elif damage == "undecodable":
        write_folder(root)
        (root / "train" / "cat" / "0000.png").write_bytes(b"\x89PNG broken")
    elif damage == "mixed-sizes":
        write_folder(root)
        Image.new("RGB", (9, 8)).save(root / "train" / "cat" / "0009.png")
    elif damage == "two-tops":
        root = tmp_path / "set.zip"
        with zipfile.ZipFile(root, "w") as archive:
            archive.writestr("a/train/cat/0.png", png_bytes(0))
            archive.writestr("b/train/cat/1.png", png_bytes(1))
    with pytest.raises(error, match=match) as err:
        load_dataset("imagefolder", root, split, cache_dir=tmp_path / "cache")
    one_line(err)


def test_unknown_names_and_options_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown data set 'mnist'"):
        load_dataset("mnist", tmp_path, "train")
    with pytest.raises(ValueError, match="only available for cifar10"):
        load_dataset("imagefolder", tmp_path, "train", download=True)
    with pytest.raises(ValueError, match="needs a root"):
        load_dataset("cifar10", None, "train")
    with pytest.raises(ValueError, match="no split 'val'"):
        load_dataset("embedded", None, "val")
    with pytest.raises(ValueError, match="unknown data set"):
        dataset_stats("mnist")


# ---------------------------------------------------------------- embedded subset


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return {
        split: load_dataset("embedded", None, split, cache_dir=cache) for split in ("train", "test")
    }


def test_embedded_subset_is_balanced_cifar10(embedded):
    """The shipped subset: 500 train + 100 test real 32 x 32 images per CIFAR-10 class."""
    for split, per_class in [("train", 500), ("test", 100)]:
        images = embedded[split]
        assert images.classes == CIFAR10_CLASSES and images.name == "embedded"
        assert images.images.shape == (10 * per_class, 3, 32, 32)
        assert torch.bincount(images.labels, minlength=10).tolist() == [per_class] * 10


def test_embedded_pixel_statistics_match_cifar10_stats_section5(embedded):
    """dataset_stats('embedded') are CIFAR-10's; a real 5,000-image subset reproduces them."""
    mean, std = dataset_stats("embedded")
    assert (mean, std) == dataset_stats("cifar10")
    pixels = embedded["train"].images.double() / 255
    np.testing.assert_allclose(pixels.mean((0, 2, 3)).numpy(), mean, atol=0.01)
    np.testing.assert_allclose(pixels.std((0, 2, 3)).numpy(), std, atol=0.01)
    assert dataset_stats("imagefolder") == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def test_imageset_to_copies_and_validates(embedded):
    images = embedded["test"]
    moved = images.to("cpu")
    assert torch.equal(moved.images, images.images) and len(moved) == 1000
    assert moved.images.data_ptr() != images.images.data_ptr()
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\) uint8"):
        ImageSet(images.images.float(), images.labels, images.classes, "x")
    with pytest.raises(ValueError, match=r"labels must be \(1000,\) int64"):
        ImageSet(images.images, images.labels[:10], images.classes, "x")


@pytest.mark.parametrize("content", [b"\x89PNG broken", b"not an image at all"])
def test_an_undecodable_image_error_names_the_file_not_an_object_address(tmp_path, content):
    """Pillow's message names its in-memory buffer (``<_io.BytesIO object at 0x...>``); the
    error names the image file instead, on one line."""
    root = tmp_path / "set"
    write_folder(root)
    (root / "train" / "cat" / "0000.png").write_bytes(content)
    with pytest.raises(ValueError, match=r"cannot decode image .*cat/0000\.png") as err:
        load_dataset("imagefolder", root, "train", cache_dir=tmp_path / "cache")
    message = str(err.value)
    assert " at 0x" not in message and "BytesIO" not in message and "\n" not in message
