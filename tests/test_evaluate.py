"""Linear evaluation of theory.md section 5: features, the logistic probe, and kNN."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from linear_ssl.train.evaluate import (  # noqa: E402
    evaluate_backbone,
    extract_features,
    knn,
    linear_probe,
    standardize,
)
from linear_ssl.train.nets import resnet  # noqa: E402

pytestmark = pytest.mark.torch


def clusters(n_per_class, n_classes, dim, sep, seed):
    """Gaussian clusters (unit noise) centred at sep * e_c: linearly separable for large sep."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n_classes).repeat_interleave(n_per_class)
    x = torch.randn(len(y), dim, generator=g)
    x[torch.arange(len(y)), y] += sep
    return x, y


def to_unit(images):
    return images.float() / 255


# ---------------------------------------------------------------- extract_features


def test_extract_features_eval_mode_chunked_and_restores_mode():
    """Chunked extraction equals one eval-mode pass; BN running stats stay untouched."""
    torch.manual_seed(0)
    net = resnet(18, stem="cifar", width=8).train()
    images = torch.randint(0, 256, (10, 3, 16, 16), dtype=torch.uint8)
    stats = net.stem[1].running_mean.clone()
    feats = extract_features(net, images, to_unit, batch_size=3)
    assert net.training
    assert torch.equal(net.stem[1].running_mean, stats)  # eval mode: no stat update
    assert feats.shape == (10, 64) and feats.dtype == torch.float32
    assert not feats.requires_grad
    with torch.no_grad():
        ref = net.eval()(to_unit(images))
    assert torch.allclose(feats, ref, atol=1e-5)


def test_extract_features_rejects_float_images():
    net = resnet(18, stem="cifar", width=8)
    with pytest.raises(ValueError, match="uint8"):
        extract_features(net, torch.rand(2, 3, 8, 8), to_unit)


# ---------------------------------------------------------------- linear_probe


def test_standardize_uses_train_statistics_sec5():
    g = torch.Generator().manual_seed(1)
    train = torch.randn(50, 3, generator=g) * torch.tensor([1.0, 5.0, 0.0]) + 2
    test = torch.randn(20, 3, generator=g) + 7
    s_train, s_test = standardize(train, test)
    a = train.double().numpy()
    mean, std = a.mean(0), a.std(0)
    std[std == 0] = 1  # constant feature: scale 1
    np.testing.assert_allclose(s_train.numpy(), (a - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s_test.numpy(), (test.numpy() - mean) / std, rtol=1e-5, atol=1e-4)


def test_probe_separable_clusters_reach_100_sec5():
    """Default protocol (Adam 3e-4, wd 1e-3, batch 128, 50 epochs) on separable clusters."""
    train_x, train_y = clusters(1000, 4, 16, sep=8.0, seed=0)
    test_x, test_y = clusters(100, 4, 16, sep=8.0, seed=1)
    out = linear_probe(train_x, train_y, test_x, test_y)
    assert out["final"] == 100.0


def test_probe_random_labels_give_chance_sec5():
    """Labels independent of the features: test accuracy ~ Binomial(2000, 1/5) / 2000,
    standard deviation 0.9 %; the margin is 4.5 of them."""
    g = torch.Generator().manual_seed(2)
    train_x, test_x = torch.randn(1000, 32, generator=g), torch.randn(2000, 32, generator=g)
    train_y = torch.randint(0, 5, (1000,), generator=g)
    test_y = torch.randint(0, 5, (2000,), generator=g)
    out = linear_probe(train_x, train_y, test_x, test_y, epochs=10)
    assert abs(out["final"] - 20.0) < 4.0


def test_probe_standardises_with_train_statistics_only_sec5():
    """Test set shifted by +10 along the separating feature: with train statistics every
    test point lands in class 1, so accuracy is exactly the class-1 share, 50 %; test
    statistics would undo the shift and give 100 %."""
    train_x, train_y = clusters(200, 2, 4, sep=3.0, seed=3)
    test_x, test_y = clusters(100, 2, 4, sep=3.0, seed=4)
    fit = {"epochs": 20, "lr": 1e-2}  # a fast fit: this test is about the standardisation
    assert linear_probe(train_x, train_y, test_x, test_y, **fit)["final"] > 95
    shifted = test_x.clone()
    shifted[:, 1] += 10.0
    shifted[:, 0] -= 10.0
    assert linear_probe(train_x, train_y, shifted, test_y, **fit)["final"] == 50.0


def test_probe_final_and_best_semantics_sec5():
    """final = last epoch's accuracy, best = max over epochs; seeded runs are prefixes of
    each other (same initialisation, same batch order)."""
    train_x, train_y = clusters(60, 3, 8, sep=1.0, seed=5)
    test_x, test_y = clusters(60, 3, 8, sep=1.0, seed=6)
    long = linear_probe(train_x, train_y, test_x, test_y, epochs=6, seed=7)
    short = linear_probe(train_x, train_y, test_x, test_y, epochs=2, seed=7)
    assert len(long["per_epoch"]) == 6
    assert long["final"] == long["per_epoch"][-1]
    assert long["best"] == max(long["per_epoch"])
    assert short["per_epoch"] == long["per_epoch"][:2]
    # accuracies are multiples of 100 / n_test
    for acc in long["per_epoch"]:
        assert math.isclose(acc * 180 / 100, round(acc * 180 / 100), abs_tol=1e-9)


# ---------------------------------------------------------------- kNN


def test_knn_hand_example_temperature_flips_vote():
    """Test point e1, label 0. Neighbours by cosine: e1 (label 0, sim 1), (0.6, +-0.8)
    (label 1, sim 0.6 each), -e1 (label 0, sim -1).
    k=3, T=1:   class 0 gets e^1 = 2.72, class 1 gets 2 e^0.6 = 3.64 -> wrong.
    k=3, T=0.1: class 0 gets e^10, class 1 gets 2 e^6 -> right.
    k=4, T=1:   class 0 gets e + e^-1 = 3.09 < 3.64 -> wrong.   k=1: right."""
    train_x = torch.tensor([[2.0, 0.0], [0.6, 0.8], [0.6, -0.8], [-3.0, 0.0]])
    train_y = torch.tensor([0, 1, 1, 0])
    test_x, test_y = torch.tensor([[5.0, 0.0]]), torch.tensor([0])
    assert knn(train_x, train_y, test_x, test_y, k=3, temperature=1.0) == 0.0
    assert knn(train_x, train_y, test_x, test_y, k=3, temperature=0.1) == 100.0
    assert knn(train_x, train_y, test_x, test_y, k=4, temperature=1.0) == 0.0
    assert knn(train_x, train_y, test_x, test_y, k=1, temperature=1.0) == 100.0


def knn_numpy(train_x, train_y, test_x, test_y, k, temperature, n_classes):
    """Brute-force reference: a loop over test points."""
    a = train_x / np.linalg.norm(train_x, axis=1, keepdims=True)
    correct = 0
    for x, y in zip(test_x, test_y, strict=True):
        sim = a @ (x / np.linalg.norm(x))
        nearest = np.argsort(-sim, kind="stable")[:k]
        votes = np.zeros(n_classes)
        for i in nearest:
            votes[train_y[i]] += np.exp(sim[i] / temperature)
        correct += int(np.argmax(votes) == y)
    return 100.0 * correct / len(test_y)


@pytest.mark.parametrize(("k", "temperature"), [(1, 0.1), (7, 0.1), (75, 0.5), (200, 0.07)])
def test_knn_matches_brute_force(k, temperature):
    """k = 75 and 200 exceed the class size (50): votes mix classes."""
    train_x, train_y = clusters(50, 4, 6, sep=1.5, seed=8)
    test_x, test_y = clusters(30, 4, 6, sep=1.5, seed=9)
    got = knn(train_x, train_y, test_x, test_y, k=k, temperature=temperature, chunk_size=17)
    train = (train_x.double().numpy(), train_y.numpy())
    test = (test_x.double().numpy(), test_y.numpy())
    ref = knn_numpy(*train, *test, k, temperature, n_classes=4)
    assert got == pytest.approx(ref)


def test_knn_all_neighbours_high_temperature_is_majority_vote():
    """k = n_train and T large: every test point gets the train set's majority class."""
    train_x, _ = clusters(10, 3, 4, sep=0.0, seed=10)
    train_y = torch.tensor([2] * 14 + [0] * 8 + [1] * 8)
    test_x, test_y = clusters(10, 3, 4, sep=0.0, seed=11)
    acc = knn(train_x, train_y, test_x, test_y, k=30, temperature=1e4)
    assert acc == pytest.approx(100.0 * (test_y == 2).float().mean().item())


# ---------------------------------------------------------------- bad input


@pytest.fixture
def good():
    x, y = clusters(5, 2, 3, sep=1.0, seed=12)
    return x, y, x.clone(), y.clone()


@pytest.mark.parametrize("fn", [linear_probe, knn])
@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda a: (a[0][:, :2], a[1], a[2], a[3]), "must match"),
        (lambda a: (a[0], a[1][:-1], a[2], a[3]), "shape"),
        (lambda a: (a[0], a[1], a[2].masked_fill(a[2] > 1, float("nan")), a[3]), "NaN"),
        (lambda a: (a[0], a[1] - 1, a[2], a[3]), "labels span"),
        (lambda a: (a[0], a[1].float(), a[2], a[3]), "integers"),
    ],
)
def test_bad_input_one_line_value_error(fn, good, mutate, message):
    with pytest.raises(ValueError, match=message) as err:
        fn(*mutate(good), **({"k": 2} if fn is knn else {"epochs": 1}))
    assert "\n" not in str(err.value)


def test_labels_beyond_num_classes_and_k_too_large(good):
    with pytest.raises(ValueError, match="labels span"):
        linear_probe(*good, num_classes=1, epochs=1)
    with pytest.raises(ValueError, match="k=11"):
        knn(*good, k=11)


# ---------------------------------------------------------------- evaluate_backbone


def test_evaluate_backbone_agrees_with_its_parts():
    torch.manual_seed(0)
    net = resnet(18, stem="cifar", width=8)
    g = torch.Generator().manual_seed(13)

    def image_set(n):
        images = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g)
        return SimpleNamespace(
            images=images, labels=torch.randint(0, 3, (n,), generator=g), classes=["a", "b", "c"]
        )

    train, test = image_set(24), image_set(12)
    out = evaluate_backbone(net, train, test, to_unit, probe_epochs=3, knn_k=200, seed=1)
    f_train, f_test = (
        extract_features(net, train.images, to_unit),
        extract_features(net, test.images, to_unit),
    )
    probe = linear_probe(f_train, train.labels, f_test, test.labels, epochs=3, seed=1)
    assert out["probe_per_epoch"] == probe["per_epoch"]
    assert (out["probe_final"], out["probe_best"]) == (probe["final"], probe["best"])
    assert out["knn_k"] == 24  # clipped to the train set size
    assert out["knn"] == knn(f_train, train.labels, f_test, test.labels, k=24)
    assert "knn" not in evaluate_backbone(net, train, test, to_unit, probe_epochs=1, knn_k=None)


def test_evaluation_leaves_global_rng_untouched():
    """A probe inside a training run must not shift the run's random stream (resume)."""
    x, y = clusters(20, 2, 3, sep=1.0, seed=14)
    state = torch.get_rng_state()
    linear_probe(x, y, x, y, epochs=2)
    knn(x, y, x, y, k=5)
    assert torch.equal(torch.get_rng_state(), state)
