"""The spectra recorder on a DirectPred run: what it writes agrees with R1, T6 and an
independent recomputation from the running estimates."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tiny import TINY_MODEL  # noqa: E402

from linear_ssl.runs import load_run  # noqa: E402
from linear_ssl.train.config import load_config  # noqa: E402
from linear_ssl.train.loop import Trainer  # noqa: E402

TINY = [
    *TINY_MODEL,
    "data.limit=256",
    "record.log_every=2",
    "checkpoint.every=1000",
]


def test_directpred_record_matches_R1_and_commutes_with_F_hat(tmp_path):
    """With freq 1 and the recorder's rho equal to the predictor's, Wp = U diag(p) U^T is
    built from the very F_hat recorded: so along F_hat's eigenvectors p_j = sqrt(s_j /
    s_max) + eps (R1, code variant), Wp commutes with F_hat (T6: ||[F, Wp]|| = 0), every
    alignment cos(u_j, Wp u_j) is 1, Wp is symmetric (E2 = 0, asymmetry 0), and tau_j is
    u_j^T C_to u_j / s_j of the recorder's own C_to."""
    cfg = load_config(None, [*TINY, "max_steps=6", "record.every=3"])
    trainer = Trainer(cfg, tmp_path)
    trainer.fit()
    run = load_run(tmp_path)
    assert run.spectra.steps.tolist() == [0, 3, 6]  # theory.md section 8: a record at step 0
    rec = run.spectra.at(6)
    s = rec["mode_s"]
    np.testing.assert_allclose(np.sort(s)[::-1], rec["F_eigvals"], rtol=1e-10)
    expected_p = np.maximum(np.sqrt(np.maximum(s, 0) / s.max()) + 0.1, 1e-4)
    np.testing.assert_allclose(rec["mode_p"], expected_p, rtol=2e-4, atol=2e-4)
    assert rec["commutator"] < 1e-4 * np.linalg.norm(rec["F_eigvals"]) * expected_p.max()
    np.testing.assert_allclose(rec["alignment"], 1.0, atol=1e-4)
    assert rec["asymmetry"] < 1e-6 and rec["E_quasi_symmetry"] < 1e-6
    np.testing.assert_allclose(rec["Wp_eigvals_imag"], 0.0, atol=1e-6)
    np.testing.assert_allclose(np.sort(rec["Wp_eigvals_real"]), np.sort(expected_p), rtol=1e-3)
    # tau_j from the recorder's own estimates, recomputed independently
    F = trainer.recorder.estimate.F.double().numpy()
    C = trainer.recorder.estimate.C_to.double().numpy()
    vals, vecs = np.linalg.eigh((F + F.T) / 2)
    order = np.argsort(vals)[::-1]
    tau = np.einsum("ij,ik,kj->j", vecs[:, order], C, vecs[:, order]) / vals[order]
    np.testing.assert_allclose(np.sort(rec["mode_tau"]), np.sort(tau), rtol=1e-4, atol=1e-6)
    # the metrics carry the collapse measure of calibration.md at each logged step
    assert run.metrics["step"].tolist() == [2, 4, 6]
    assert (run.metrics["backbone_pr"] >= 1).all() and (run.metrics["projector_pr"] >= 1).all()


def test_a_non_linear_predictor_records_what_applies(tmp_path):
    """MLP predictor: F_hat, tau and the feature PRs are recorded; no Wp quantities."""
    cfg = load_config(
        None,
        [*TINY, "max_steps=2", "record.every=2", "predictor.kind=mlp", "predictor.hidden_dim=16"],
    )
    Trainer(cfg, tmp_path).fit()
    spectra = load_run(tmp_path).spectra
    assert {"F_eigvals", "mode_s", "mode_tau", "backbone_pr", "projector_pr"} <= set(spectra)
    assert not {"mode_p", "alignment", "commutator", "Wp_singvals"} & set(spectra)


def test_a_record_written_a_step_later_holds_its_own_step(tmp_path):
    """Records are snapshotted at their step and written after the next step is queued:
    the step-2 record of a 5-step run (written during step 3) equals, array for array, the
    record of a run that stops at step 2 (written at once, at its last step), although
    F_hat, C_to and Wp have moved on by the time it is written."""
    runs = {}
    for steps in (2, 5):
        cfg = load_config(None, [*TINY, f"max_steps={steps}", "record.every=2"])
        Trainer(cfg, tmp_path / str(steps)).fit()
        runs[steps] = load_run(tmp_path / str(steps)).spectra
    assert runs[5].steps.tolist() == [0, 2, 4]
    early, late = runs[2].at(2), runs[5].at(2)
    assert early.keys() == late.keys() and "mode_p" in early
    for name in early:
        np.testing.assert_array_equal(late[name], early[name], err_msg=name)
    assert not np.array_equal(runs[5].at(4)["F_eigvals"], early["F_eigvals"])
