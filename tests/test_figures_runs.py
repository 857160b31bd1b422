"""Run figures of linear_ssl.figures: run_t_fig2, run_t_fig6, run_e_fig1, run_e_fig3 and
run_overlay ([T] Figs. 2, 6, [E] Figs. 1, 3, the overlay).

The data functions are checked against quantities recomputed independently from the
linear model's weights (theory.sgd with the same seed), not against pixels; every figure
renders (test_figures.py renders every figure of the registry).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from linear_ssl import bridge
from linear_ssl.figures import (
    RUN_FIGURES,
    run_e_fig1,
    run_e_fig3,
    run_figures,
    run_overlay,
    run_t_fig2,
    run_t_fig6,
)
from linear_ssl.runs import RunWriter
from linear_ssl.theory import Hyper, sgd

H = Hyper(alpha_p=1.0, beta=0.5, eta=0.01, sigma2=0.2)
LR, STEPS, BATCH, EVERY = 0.05, 120, 64, 20


def _init(seed):
    return bridge.aligned_init([1.0, 0.4, 0.1], [0.5, 0.3, 0.2], 0.9, n1=4, seed=seed)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    paths = []
    for seed in (0, 1):
        paths.append(
            bridge.write_linear_run(
                root / f"run{seed}", H, *_init(seed), lr=LR, steps=STEPS, batch=BATCH,
                record_every=EVERY, seed=seed, name=f"linear{seed}",
            )
        )  # fmt: skip
    return paths


@pytest.fixture(scope="module")
def weights():
    """The same SGD run as runs[0], recomputed: W, Wp at each record step."""
    result = sgd.simulate(H, *_init(0), lr=LR, steps=STEPS, batch=BATCH, record_every=EVERY, seed=0)
    F = [W @ W.T * (1 + H.sigma2) for W in result.W[:, 0]]  # F_hat = W (X + X') W^T, X = I
    return result.steps, F, result.Wp[:, 0]


def test_t_fig2_data_is_the_spectrum_alignment_and_asymmetry_of_the_weights(runs, weights):
    """[T] Fig. 2: log eig(F_hat), eig(Wp), cos(u_j, Wp u_j), ||Wp - Wp^T|| / ||Wp||."""
    steps, F, Wp = weights
    data = run_t_fig2.data(runs[0])
    np.testing.assert_array_equal(data.steps, steps)
    for i in range(len(steps)):
        expected = np.log10(np.sort(np.linalg.eigvalsh(F[i]))[::-1])
        np.testing.assert_allclose(data.log10_F_eigvals[i], expected, rtol=1e-9)
        eig = np.sort(np.linalg.eigvals(Wp[i]).real)[::-1]
        np.testing.assert_allclose(data.Wp_eigvals[i], eig, rtol=1e-9, atol=1e-12)
        _, U = np.linalg.eigh(F[i])
        U = U[:, ::-1]
        V = Wp[i] @ U
        cos = np.sum(U * V, 0) / np.linalg.norm(V, axis=0)
        np.testing.assert_allclose(data.alignment[i], cos, rtol=1e-9)
        asym = np.linalg.norm(Wp[i] - Wp[i].T) / np.linalg.norm(Wp[i])
        assert data.asymmetry[i] == pytest.approx(asym, rel=1e-9, abs=1e-15)
    assert "lr=0.05" in data.title and "η=0.01" in data.title


def test_e_fig1_data_is_e4_of_the_predictor(runs, weights):
    """[E] Fig. 1 / E4: stable rank ||P||_F^2 / ||P||_2^2 and trace of P / rho(P)."""
    _, _, Wp = weights
    data = run_e_fig1.data(runs[0])
    for i, P in enumerate(Wp):
        sv = np.linalg.svd(P, compute_uv=False)
        assert data.stable_rank[i] == pytest.approx(np.sum(sv**2) / sv[0] ** 2, rel=1e-9)
        rho = np.max(np.abs(np.linalg.eigvals(P)))
        assert data.trace[i] == pytest.approx(np.trace(P) / rho, rel=1e-6)


def test_e_fig3_and_t_fig6_data(runs, weights):
    """E8: eig(F_hat) / max eig per record; [T] Fig. 6: top eigenvalues and PR per run."""
    _, F, _ = weights
    e3 = run_e_fig3.data(runs, labels=["a", "b"])
    assert [r.label for r in e3.runs] == ["a", "b"]
    for i, Fi in enumerate(F):
        eig = np.sort(np.linalg.eigvalsh(Fi))[::-1]
        np.testing.assert_allclose(e3.runs[0].spectrum[i], eig / eig[0], rtol=1e-9)
    t6 = run_t_fig6.data(runs, top=2)
    first = t6.runs[0]
    assert first.F_eigvals.shape == (len(F), 2)
    pr = [np.trace(Fi) ** 2 / np.sum(Fi**2) for Fi in F]
    np.testing.assert_allclose(first.F_pr, pr, rtol=1e-9)
    assert first.label.startswith("linear0:") and "EMA" in first.label
    with pytest.raises(ValueError, match="one or two runs"):
        run_e_fig3.data([*runs, runs[0]])
    with pytest.raises(ValueError, match="one label per run"):
        run_t_fig6.data(runs, labels=["only one"])


def test_overlay_data_is_the_comparison_of_the_top_modes(runs):
    c = bridge.compare_run(runs[0])
    data = run_overlay.data(c, top=2)
    top = c.per_mode.nlargest(2, "s0")["mode"].to_numpy()
    np.testing.assert_array_equal(data.modes, top)
    expected = c.table[c.table["mode"].isin(top)].reset_index(drop=True)
    assert data.table.equals(expected)
    assert data.alpha_p == c.hyper.alpha_p


def test_run_figures_writes_what_the_records_allow(runs, tmp_path):
    """run_figures writes PNG + PDF of every run figure of the registry for a linear run."""
    paths = run_figures(runs[0], tmp_path / "figs")
    names = {p.name for p in paths}
    assert names == {f"{n}.{x}" for n in RUN_FIGURES for x in ("png", "pdf")}
    assert all(p.stat().st_size > 1000 for p in paths)
    with pytest.raises(ValueError, match="unknown run figures"):
        run_figures(runs[0], tmp_path / "figs", names=["t_fig3_phase_portrait"])


def test_overlay_draws_the_flow_over_the_measurement(runs):
    """Issue 9: the dashed flow lies above the measured dots (zorder), one hue per mode."""
    fig = run_overlay.draw(run_overlay.data(runs[0]))
    for ax in fig.axes:
        flow = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
        measured = [ln for ln in ax.lines if ln.get_marker() == "o"]
        assert flow and measured
        assert min(ln.get_zorder() for ln in flow) > max(ln.get_zorder() for ln in measured)
        assert len({ln.get_color() for ln in flow}) == len(flow)
    plt.close(fig)


def test_run_without_spectra_is_a_one_line_error(tmp_path):
    writer = RunWriter(tmp_path / "bare")
    writer.write_config("name: bare\noptim: {lr: 0.1, momentum: 0.0, weight_decay: 0.0}\n")
    with pytest.raises(ValueError, match="no spectra records") as err:
        run_figures(tmp_path / "bare", tmp_path / "out")
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=r"\[T\] Fig. 2"):
        run_t_fig2.data(tmp_path / "bare")
