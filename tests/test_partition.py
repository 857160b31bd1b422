"""R1's partition variant (theory.md section 3, read as [T]'s reference code): K random
hyperplanes cut the feature space, F_hat per side, p(f) = mean_k Wp[k, side_k(f)] f."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tiny import TINY_MODEL  # noqa: E402

from linear_ssl import predictors as P  # noqa: E402
from linear_ssl.train.config import load_config  # noqa: E402
from linear_ssl.train.loop import Trainer  # noqa: E402

N, K, BATCH = 5, 3, 40


def _views(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(N, N))
    return [rng.normal(size=(BATCH, N)) @ mix + 0.3 for _ in range(2)]


def _loop_sides(f: np.ndarray, seed: int) -> np.ndarray:
    """side_k(f_b) = [w_k . f_b >= mean_b' w_k . f_b'] with w_k the seeded Gaussian normals."""
    normals = np.random.default_rng(seed).standard_normal((N, K))
    return np.array(
        [
            [f[b] @ normals[:, k] >= np.mean(f @ normals[:, k]) for k in range(K)]
            for b in range(len(f))
        ]
    )


def test_side_estimates_are_side_means_and_recombine_into_F_R1_partition():
    """R1 partition: F_hat[k, side] is the mean of f f^T over the side's samples (a loop
    over samples), and for every hyperplane n_+ F_+ + n_- F_- = N F (the plain F_hat)."""
    views = _views()
    rule = P.get_rule("directpred", partitions=K, partition_seed=7)
    F_sides = P.PartitionedCorrelation(rule).batch_estimate(views)
    F_full = P.RunningCorrelation()
    F_full.update(views)
    stacked = np.concatenate(views)
    sides = np.concatenate([_loop_sides(v, 7) for v in views])
    for k in range(K):
        total = np.zeros((N, N))
        for j, members in enumerate((sides[:, k], ~sides[:, k])):
            expected = sum(np.outer(f, f) for f in stacked[members]) / members.sum()
            np.testing.assert_allclose(F_sides[k, j], expected, rtol=1e-12, atol=1e-12)
            total += members.sum() * F_sides[k, j]
        np.testing.assert_allclose(total / len(stacked), F_full.F, rtol=1e-12, atol=1e-12)


def test_prediction_is_the_mean_of_the_side_predictors_R1_partition():
    """p(f_b) = (1/K) sum_k Wp[k, side_k(f_b)] f_b, Wp[k, side] = directpred(F_hat[k, side]),
    against a per-sample loop; equal side matrices reduce it to the linear R1 predictor."""
    views = _views(1)
    rule = P.get_rule("directpred", partitions=K, partition_seed=3, eps=0.05)
    plain = P.get_rule("directpred", eps=0.05)
    F_sides = P.PartitionedCorrelation(rule).batch_estimate(views)
    Wp_sides = rule(F_sides)
    for k in range(K):
        for j in range(2):
            np.testing.assert_allclose(Wp_sides[k, j], plain(F_sides[k, j]), atol=1e-14)
    f = views[0]
    sides = _loop_sides(f, 3)
    expected = np.array(
        [
            np.mean([Wp_sides[k, 0 if sides[b, k] else 1] @ f[b] for k in range(K)], axis=0)
            for b in range(BATCH)
        ]
    )
    np.testing.assert_allclose(rule.predict(f, Wp_sides), expected, rtol=1e-12, atol=1e-12)
    W = plain(np.cov(f.T))
    same = np.broadcast_to(W, (K, 2, N, N))
    np.testing.assert_allclose(rule.predict(f, same), f @ W.T, rtol=1e-12, atol=1e-12)


def test_partition_numpy_and_torch_agree_R1_partition():
    """The same side estimates, matrices and predictions on numpy and torch float64."""
    views = _views(2)
    rule = P.get_rule("directset", alpha=0.5, partitions=2, partition_seed=1)
    est_np, est_t = P.PartitionedCorrelation(rule, 0.5), P.PartitionedCorrelation(rule, 0.5)
    for shift in (0.0, 0.4):  # two batches: the EMA blend
        est_np.update([v + shift for v in views])
        est_t.update([torch.tensor(v + shift) for v in views])
    np.testing.assert_allclose(est_t.F.numpy(), est_np.F, atol=1e-12)
    W_np, W_t = rule(est_np.F), rule(est_t.F)
    np.testing.assert_allclose(W_t.numpy(), W_np, atol=1e-10)
    out_t = rule.predict(torch.tensor(views[1]), W_t)
    np.testing.assert_allclose(out_t.numpy(), rule.predict(views[1], W_np), atol=1e-10)


def test_partition_rejects_cross_rules_and_ema_in_one_line():
    for name, params in (("lrp", {}), ("directpred", {"ema": 0.5}), ("stiefel", {})):
        with pytest.raises(ValueError, match="F-only rule without ema"):
            P.get_rule(name, partitions=2, **params)
    with pytest.raises(ValueError, match="partitions=0 is invalid"):
        P.get_rule("directpred", partitions=0)


def test_trainer_closed_form_head_applies_the_partition_rule(tmp_path):
    """The closed_form head with predictor.params.partitions: after step 1 Wp_sides equals
    the rule on its side estimate, the forward pass is rule.predict, and matrix is None."""
    cfg = load_config(
        None,
        [
            *TINY_MODEL,
            "record.every=0",
            "data.limit=64",
            "predictor.params={partitions: 2, partition_seed: 5, eps: 0.1}",
        ],
    )
    trainer = Trainer(cfg, tmp_path)
    head = trainer.method.predictor
    assert head.matrix is None and isinstance(head.rule, P.PartitionedRule)
    out = trainer.train_step(trainer.images[:16])
    expected = P.get_rule("directpred", eps=0.1)(head.estimate.F[1, 0])
    torch.testing.assert_close(head.Wp_sides[1, 0], expected)
    z = out.z1
    torch.testing.assert_close(head(z), head.rule.predict(z, head.Wp_sides))
    assert head.estimate.count == 1


def test_a_partitioned_run_has_no_rule_flow_R1_partition():
    """bridge.rule_from_config: the partition variant has no per-mode p (no rule flow)."""
    from linear_ssl import bridge

    pred = {"kind": "closed_form", "rule": "directpred", "params": {"eps": 0.1}}
    assert bridge.rule_from_config({"predictor": pred}).name == "directpred"
    pred["params"]["partitions"] = 2
    assert bridge.rule_from_config({"predictor": pred}) is None
