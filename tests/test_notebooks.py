"""The notebooks run top to bottom in a fresh kernel (fast mode) and their numbers are right.

Each notebook's source is notebooks/NAME.py (jupytext percent format); the committed
NAME.ipynb must hold the same cells, without outputs. Each notebook is executed with
nbclient in a temporary working directory, in a kernel of this very interpreter (a
kernelspec written to a temporary JUPYTER_PATH), with LINEAR_SSL_NOTEBOOK_FAST=1. Its last
cell prints a JSON summary; each test checks that summary against a direct computation of
the theory it illustrates.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
jupytext = pytest.importorskip("jupytext")
pytest.importorskip("ipykernel")

from linear_ssl import predictors  # noqa: E402
from linear_ssl.theory import Hyper, modes  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
KERNEL = "linear-ssl-test"
TIMEOUT_S = 240  # per cell
SOURCES = sorted(NOTEBOOKS.glob("[0-9]*.py"))


def test_every_notebook_has_its_jupytext_source_and_no_other():
    assert SOURCES, "no notebook sources found in notebooks/"
    assert {p.stem for p in SOURCES} == {p.stem for p in NOTEBOOKS.glob("*.ipynb")}


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_committed_ipynb_matches_its_py_source_without_outputs(source: Path):
    """The .ipynb a reader opens is the .py a reviewer reads: same cells, same text."""
    paired = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    expected = [(c.cell_type, c.source) for c in jupytext.read(source).cells]
    committed = [(c.cell_type, c.source) for c in paired.cells]
    assert committed == expected, (
        f"{source.with_suffix('.ipynb').name} differs from {source.name}: "
        "run `jupytext --update --to ipynb notebooks/*.py` and commit both"
    )
    assert not any(c.get("outputs") or c.get("execution_count") for c in paired.cells), (
        f"{source.with_suffix('.ipynb').name} has outputs: notebooks are committed without them"
    )


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment whose JUPYTER_PATH offers a kernel running sys.executable."""
    jupyter = tmp_path_factory.mktemp("jupyter")
    spec = jupyter / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "linear_ssl tests", "language": "python"})
    )
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {
        "JUPYTER_PATH": str(jupyter),
        "PYTHONPATH": path,  # the package, installed or not
        "LINEAR_SSL_NOTEBOOK_FAST": "1",
        "OMP_NUM_THREADS": "1",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }


def execute(name: str, workdir: Path, env: dict[str, str], monkeypatch) -> tuple[object, dict]:
    """Run notebook `name` in `workdir`; return it (with outputs) and its JSON summary."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=TIMEOUT_S,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    text = "".join(o.get("text", "") for o in last.outputs if o.output_type == "stream")
    return nb, json.loads(text.strip().splitlines()[-1])


def images(nb) -> int:
    """Number of inline PNG figures the executed notebook shows."""
    return sum(
        "image/png" in o.get("data", {})
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
    )


def test_01_eigenmode_flow_basin_edge_is_T9_p_minus(tmp_path, kernel_env, monkeypatch):
    """T9: the basin edge the notebook finds by simulation is p-, its survivors end at p+;
    T8's invariant holds to integrator tolerance; T11: larger alpha_p shrinks the basin,
    larger eta widens it, and a looser EMA (smaller beta) traps more modes."""
    nb, summary = execute("01_eigenmode_flow.ipynb", tmp_path, kernel_env, monkeypatch)
    assert images(nb) >= 4
    h = Hyper(alpha_p=summary["alpha_p"], eta=summary["eta"])
    p_minus, p_plus = modes.fixed_points(h)
    assert summary["basin_edge"] == pytest.approx(float(p_minus), abs=1e-4)
    assert summary["p_plus_simulated"] == pytest.approx(float(p_plus), rel=1e-5)
    assert summary["t8_drift"] < 1e-6
    frac = summary["collapsed_fraction"]
    for eta in ("0.02", "0.1", "0.2"):
        assert frac[f"4,{eta}"] < frac[f"0.5,{eta}"]
    for alpha in ("0.5", "1", "4"):
        assert frac[f"{alpha},0.02"] < frac[f"{alpha},0.2"]
    ema = [summary["ema_collapsed"][b] for b in ("0.02", "0.05", "0.2", "1.0", "SimSiam")]
    assert all(a >= b for a, b in zip(ema, ema[1:], strict=False))  # T11: small beta traps more
    assert ema[0] > ema[-1]


def test_02_matrix_vs_modes_vs_sgd_T1_T2_T6_T7(tmp_path, kernel_env, monkeypatch):
    """T7 == T1 from the aligned start (rerun here from the notebook's seed values); SGD
    tends to the flow as lr shrinks (T1); T2's balance holds in every scenario while the
    reduction's error is large where A1-A3 break; T6's commutator bound holds."""
    nb, summary = execute("02_matrix_vs_modes_vs_sgd.ipynb", tmp_path, kernel_env, monkeypatch)
    assert images(nb) >= 3
    h = Hyper(**summary["hyper"])
    ref = modes.integrate(h, summary["p0"], summary["s0"], [0.0, summary["t_end"]], rtol=1e-9)
    np.testing.assert_allclose(summary["final"]["p"], ref.p[-1], rtol=1e-5)
    np.testing.assert_allclose(summary["final"]["s"], ref.s[-1], rtol=1e-5)
    assert max(summary["reduction_error"].values()) < 1e-5
    plain = {row["lr"]: row for row in summary["sgd"] if row["momentum"] == 0}
    assert plain[0.02]["s_error"] < plain[0.04]["s_error"] < 0.05
    cases = summary["scenarios"]
    assert all(c["balance_error"] < 1e-7 for c in cases.values())
    assert cases["aligned, isotropic"]["spectrum_error_max"] < 1e-5
    assert cases["non-isotropic X"]["spectrum_error_end"] > 0.05
    assert (
        cases["unaligned start"]["commutator_end"]
        < 0.5 * cases["unaligned start"]["commutator_start"]
    )
    assert summary["t6_ratio"] <= 1.0 + 1e-3


def test_04_theory_vs_trained_network_table_covers_every_recorded_mode(
    tmp_path, kernel_env, monkeypatch
):
    """The bridge on a real (tiny) run: T1's map of the run's own config; a table row per
    (record step from t0, usable mode, quantity) read from the run's spectra records; the
    closed loop on the linear model agrees with T7."""
    pytest.importorskip("torch")
    from linear_ssl.runs import load_run

    nb, summary = execute("04_theory_vs_trained_network.ipynb", tmp_path, kernel_env, monkeypatch)
    assert images(nb) >= 3
    run = load_run(summary["run_dir"])
    assert Path(summary["run_dir"]).is_relative_to(tmp_path)
    cfg = run.config
    h = Hyper.from_training(
        lr=cfg["optim"]["lr"],
        predictor_lr=cfg["predictor"]["lr"] or cfg["optim"]["lr"],
        ema=cfg["method"]["ema"],
        weight_decay=cfg["optim"]["weight_decay"],
        momentum=cfg["optim"]["momentum"],
    )
    for key, value in summary["hyper"].items():
        assert value == pytest.approx(getattr(h, key), rel=1e-12)

    steps = run.spectra.steps
    t0 = summary["t0_step"]
    assert summary["table_steps"] == [int(s) for s in steps if s >= t0]
    i0 = int(np.flatnonzero(steps == t0)[0])
    s, p, tau = (run.spectra[k][i0] for k in ("mode_s", "mode_p", "mode_tau"))
    usable = np.flatnonzero((s > 0) & np.isfinite(p) & (tau > 0))  # BYOL: A1 needs tau > 0
    assert summary["table_modes"] == usable.tolist()
    assert summary["modes"] + summary["modes_unusable"] == run.spectra["mode_s"].shape[1]
    assert summary["table_rows"] == 3 * len(summary["table_modes"]) * len(summary["table_steps"])
    last = run.spectra["mode_s"][-1]
    for mode, value in summary["last_measured_s"].items():
        assert value == pytest.approx(last[int(mode)], rel=1e-12)
    assert summary["linear"]["err_s_median"] < 0.05
    assert summary["linear"]["err_p_median"] < 0.05


def test_03_closed_form_predictors_R1_state_and_E1_E3(tmp_path, kernel_env, monkeypatch):
    """R1 applied here to the notebook's final linear-model state gives its Wp (the flow sets
    Wp = rule(C_oo, C_to) at every instant); E1-E5 recomputed from it match the notebook's
    table; every rule's E3 <= E1 + ||P||_2 E2 (theory.md section 4); R6 at n = 9 is close to
    Sigma^(1/2); R2 without its ridge keeps fewer modes alive than with it (R9); under R3
    (LRP) the residual of T1 vanishes, so F decays as exp(-2 eta t)."""
    from linear_ssl import diagnostics

    nb, summary = execute("03_closed_form_predictors.ipynb", tmp_path, kernel_env, monkeypatch)
    assert images(nb) >= 3
    W, Wa, Wp, X, Xp = (np.array(summary[k]) for k in ("W", "Wa", "Wp", "X", "Xp"))
    C_oo = W @ (X + Xp) @ W.T
    expected = predictors.directpred((C_oo + C_oo.T) / 2, eps=summary["eps"])
    np.testing.assert_allclose(Wp, expected, atol=1e-10)
    edge = diagnostics.edge_of_orthogonality(Wp)
    row = summary["edge"]["directpred eps=0.1 (R1)"]
    assert row["E3"] == pytest.approx(edge["quasi_orthogonality"], rel=1e-9)
    assert row["E5"] == pytest.approx(edge["polar_distance"], rel=1e-9)
    for r in summary["edge"].values():
        assert r["E3"] <= r["E1"] + r["norm"] * r["E2"] + 1e-12
    assert summary["ns_error_n9"] < 1e-4
    # R3 on a square W with Wa(0) = W(0) fits the target exactly: W feels only weight decay
    expected_scale = np.exp(-2 * summary["eta"] * summary["t_end"])
    assert summary["lrp_scale"] == pytest.approx(expected_scale, rel=1e-3)
    alive = summary["alive"]
    assert alive["directcopy eps=0 (R2)"] < alive["directcopy eps=0.1 (R2)"]


@pytest.mark.slow  # a kernel and both families' sweeps (~10 s on an idle 2-core CPU)
def test_05_beyond_byol_S3_S5_S9_J4(tmp_path, kernel_env, monkeypatch):
    """S3-S5: Gram conserved, the PSD flow ends on the top-k eigen-subspace with
    ||Phi^T T Phi||^2 = the top-k sum of squared eigenvalues (recomputed here); S5's stable
    spans and more than one reached; S6 shrinks; S9 exact; J4: the learning orders by
    lambda (MAE, shallow JEPA) and by rho (deep JEPA), and the eps -> 0 form."""
    from linear_ssl.theory import rl

    nb, summary = execute("05_beyond_byol.ipynb", tmp_path, kernel_env, monkeypatch)
    assert images(nb) >= 4
    T = rl.random_mdp(summary["n"], "symmetric_psd", seed=summary["seed"])
    top = np.sort(np.linalg.eigvalsh(T))[::-1][: summary["k"]]
    np.testing.assert_allclose(summary["final_trace"], np.sum(top**2), rtol=1e-6)
    assert summary["gram_drift"] < 1e-6 and summary["final_distance"] < 1e-4
    w = np.linalg.eigvalsh(rl.symmetric_matrix([1.0, 0.8, 0.5, 0.3, 0.1, -0.2, -0.6, -0.9], 1))
    assert summary["stable_spans"] == [list(s) for s in rl.stable_spans(w, 2)]
    assert len(summary["reached"]) >= 2
    assert summary["norm_ratio_no_stopgrad"] < 0.95
    assert summary["variance_identity_error"] < 1e-12
    lam, rho = np.array([1.0, 1.3, 1.6, 1.9]), np.array([1.0, 0.85, 0.7, 0.6])
    orders = summary["orders"]
    assert orders["mae5"] == orders["jepa1"] == np.argsort(-lam).tolist()
    assert orders["jepa5"] == np.argsort(-rho).tolist()
    np.testing.assert_allclose(summary["asymptotic_ratio"], 1.0, atol=1e-3)
    assert summary["flow_vs_closed_form"] < 1e-2


@pytest.mark.slow  # a kernel, N2 and both SGD runs (~15 s on a shared 2-core CPU)
def test_06_normalised_vs_squared_threshold_sgd_and_basin(tmp_path, kernel_env, monkeypatch):
    """2b against T9: past T9's threshold T7 collapses every mode while N2 keeps the shape
    (rerun here) and its scale is exactly e^(-2 eta t) of the start (N1's trace identity);
    cosine-loss SGD keeps a finite norm and its effective dimension where squared-error
    SGD collapses; a mode below p- on the parabola dies under T7, not under N2."""
    from linear_ssl.theory import normalised

    nb, summary = execute("06_normalised_vs_squared.ipynb", tmp_path, kernel_env, monkeypatch)
    assert images(nb) >= 3
    h = Hyper(**summary["hyper"])
    assert h.eta > h.collapse_threshold
    assert max(summary["t7_s_end"]) < 1e-3
    ref = normalised.integrate_modes(h, summary["p0"], summary["s0"], [0.0, summary["t_end"]])
    np.testing.assert_allclose(summary["n2_shape_end"], ref.shape[-1], rtol=1e-4)
    assert min(summary["n2_shape_end"]) > 0.01
    assert summary["n2_scale_drift"] < 1e-4
    cosine, squared = summary["sgd"]["cosine"], summary["sgd"]["squared"]
    assert cosine["norm_ratio"] > 0.03 and cosine["d_eff"] > 6
    assert squared["norm_ratio"] < 1e-3
    basin = summary["basin"]
    assert basin["p_minus"] == pytest.approx(float(modes.fixed_points(Hyper(eta=0.1))[0]))
    assert basin["t7_ratio_end"] < 0.01 < 0.5 < basin["n2_ratio_end"]  # s0/s1 started at 0.02
