"""Figures of theory.md section 9: each figure's data checked against the theory it draws."""

import numpy as np

from linear_ssl.figures import j_jepa_critical_times, s_rl_subspace_distance, save_figure


def test_rl_subspace_figure_data(tmp_path):
    """S5, S7, S8: stop-gradient variants end on the predicted subspaces, the one-sided flow
    on a non-symmetric T and BYOL-VAR do not; every panel starts from the same batch."""
    d = s_rl_subspace_distance.data(n=6, k=2, inits=3, t_end=600.0, points=6)
    df = d.distances
    assert df.distance.between(0, 1 + 1e-12).all()
    final = df[df.t == df.t.max()].groupby(["panel", "variant"]).distance.max()
    for key in [
        ("psd", "stop-gradient"),
        ("psd", "EMA, beta = 0.5"),
        ("indefinite", "stop-gradient"),
        ("bidirectional", "bidirectional Phi (left)"),
        ("bidirectional", "bidirectional Psi (right)"),
        ("actions", "BYOL-Pi"),
    ]:
        assert final[key] < 1e-3, key
    assert final["bidirectional", "one-sided Phi (left)"] > 0.1
    start = df[(df.t == 0) & (df.panel == "psd")].groupby("init").distance
    assert np.all(start.max() - start.min() < 1e-12)  # the same starts for every variant
    assert save_figure(s_rl_subspace_distance.draw(d), tmp_path, "rl")[0].stat().st_size > 0


def test_jepa_critical_times_figure_data(tmp_path):
    """J4: the critical times read off the integrated flow are the closed form's."""
    d = j_jepa_critical_times.data(grid=5, depths=(1, 3), points=800)
    for key, t_flow in d.t_flow.items():
        assert t_flow.shape == (5, 5)
        np.testing.assert_allclose(t_flow, d.t_exact[key], rtol=2e-3, err_msg=str(key))
    assert save_figure(j_jepa_critical_times.draw(d), tmp_path, "jepa")[0].stat().st_size > 0
