"""theory.md section 8's agreement ladder: one recorder, one bridge, four encoders.

Rungs (``RUNGS``): 1 ``linear``, a linear encoder on downsampled pixels with the squared
error (flow T1 with X, X' measured from the data and its augmentation: exact in
expectation); 2 ``linear-cosine``, the same with the normalised loss (N1, A4 the only
approximation); 3 ``mlp``, a ReLU MLP encoder; 4 ``resnet``. All train BYOL with a
trainable linear predictor (so no agreement is built in, unlike DirectPred's), at
alpha_p = 1 (eta_p = eta, T2 exact).

``assess_run`` scores one run by the protocol (``bridge.protocol``). The flow: the matrix
flow T1 / N1 from the recorded encoder weights at record 0 when X, X' were measured, scored
on the run's exact C12 = W X W^T (no sampling noise; the window estimate's scores beside
it); otherwise the mode flow T7 (record 0) or N2 (the first record where the modes carry
half of the centred E||q||^2: ``_n2_seed``) from the centred C12, C11, C_to records. One
global number (a time scale on T1's clock) is fitted on the early window and frozen, and
the later window is predicted; skills against persistence and log-linear extrapolation, the
grow/shrink AUC, the balance identity (T2) and [T] Fig. 2's trends are
reported. ``run_ladder`` trains the rungs over seeds and writes ladder.json / .md (the CLI draws
ladder.png from its rows with ``figures.ladder``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from linear_ssl import diagnostics
from linear_ssl.bridge import protocol
from linear_ssl.runs import Run, atomic_write_text, load_run
from linear_ssl.theory import matrix as theory_matrix
from linear_ssl.theory import modes as theory_modes
from linear_ssl.theory import normalised, solvers
from linear_ssl.theory.params import Hyper

__all__ = [
    "COVARIANCES_FILE",
    "RUNGS",
    "assess_run",
    "agreement_bound",
    "correlation_along",
    "flow_error",
    "markdown",
    "measure_covariances",
    "rung_config",
    "run_ladder",
    "summarise",
    "verdicts",
]

COVARIANCES_FILE = "data_covariances.npz"
RUNGS = ("linear", "linear-cosine", "mlp", "resnet")
TOP_MODES = 8
TIME_SCALE_BOUNDS = (0.25, 4.0)
C_LOSS = 4.0  # the trainer's normalised loss: two -2 cos terms summed (N1's c_L)
_LOSS = {"linear": "squared", "linear-cosine": "normalised", "mlp": "normalised"}


# --------------------------------------------------------------------------- data side


def measure_covariances(
    images, augment, pixels: int, views: int = 8, limit: int | None = None, batch: int = 256
) -> dict[str, np.ndarray]:
    """theory.md section 1's X and X' of the pixel encoders' input, from the data and the
    real augmentation: ``views`` augmentations (the trainer's two view pipelines in turn)
    of every training image (T1's expectation is over the set the run trains on: a
    4,096-image sample of a 10k CIFAR-10 subset moved X's top eigenvalue by 6 % and rung 1's
    skills with it), or of ``train.data.subset``'s fixed random ``limit`` of them for a
    set too large, x = ``nets.pixel_features``. Never the first rows: image files are often
    sorted by class, and X of one class is not the X the run trains on (measured on
    CIFAR-10: tr X of the first 1,024 of a 10k subset, all airplanes, is 1.6x that of all
    10k, and T1 ran 1.6x too fast).

    X' = mean over images of the sample covariance of an image's views (unbiased);
    X = mean(xbar xbar^T) - X'/views (E[xbar xbar^T] of a finite mean of views carries
    X'/views); mu = E[x]. float64, both projected onto the PSD cone (sampling error).
    """
    import torch

    from linear_ssl.train.data import subset
    from linear_ssl.train.nets import pixel_features

    if views < 2 or views % 2:
        raise ValueError(f"views={views} is invalid: an even number >= 2 (two pipelines)")
    n1 = 3 * pixels * pixels
    X = torch.zeros(n1, n1, dtype=torch.float64)
    Xp, mu = torch.zeros_like(X), torch.zeros(n1, dtype=torch.float64)
    count = 0
    images = subset(images, limit)
    with torch.no_grad():
        for start in range(0, images.shape[0], batch):
            chunk = images[start : start + batch]
            xs = []
            for _ in range(views // 2):
                for v in augment.two_views(chunk):
                    xs.append(pixel_features(v, pixels).to(torch.float64))
            x = torch.stack(xs)  # (views, N, n1)
            xbar = x.mean(0)
            dev = x - xbar
            Xp += torch.einsum("kni,knj->ij", dev, dev) / (views - 1)
            X += xbar.T @ xbar
            mu += xbar.sum(0)
            count += chunk.shape[0]
    Xp, X, mu = Xp / count, X / count, mu / count
    return {"X": _psd(X - Xp / views), "Xp": _psd(Xp), "mu": mu.numpy(), "views": np.asarray(views)}


def _psd(M) -> np.ndarray:
    """The symmetric part of M with negative eigenvalues (sampling error) set to 0."""
    M = np.asarray(M, dtype=float)
    values, vectors = np.linalg.eigh((M + M.T) / 2)
    return (vectors * np.clip(values, 0.0, None)) @ vectors.T


def rung_config(
    rung: str,
    *,
    data: str | Path | None = None,
    steps: int = 300,
    seed: int = 0,
    run_dir: str | Path | None = None,
    limit: int | None = None,
    width: int = 8,
    records: int = 15,
    lr: float = 0.05,
) -> dict[str, Any]:
    """The training config of a rung (BYOL, trainable linear predictor, alpha_p = 1; SGD
    at ``lr`` with momentum 0.9, so one step is dt = 10 lr of flow time by T1's mapping)."""
    if rung not in RUNGS:
        raise ValueError(f"rung {rung!r} is unknown: use some of {', '.join(RUNGS)}")
    if data is None:
        data_cfg: dict[str, Any] = {"name": "embedded"}
    else:
        data_cfg = {"name": "imagefolder", "root": str(data)}
    if limit is not None:
        data_cfg["limit"] = int(limit)
    every = max(steps // records, 1)
    cfg: dict[str, Any] = {
        "name": f"ladder-{rung}",
        "data": data_cfg,
        "augment": {"recipe": "cifar10", "image_size": 32},
        "method": {"name": "byol", "ema": 0.99, "loss": _LOSS.get(rung, "normalised")},
        "predictor": {"kind": "linear"},
        "optim": {"lr": lr, "momentum": 0.9, "weight_decay": 4e-4},
        "batch_size": 128,
        "epochs": 10_000,
        "max_steps": steps,
        "seed": seed,
        "record": {
            "every": every,
            "batches": min(16, every),
            "log_every": every,
            "progress": False,
        },
        "checkpoint": {"every": steps},
        "run_dir": None if run_dir is None else str(run_dir),
    }
    if rung == "resnet":
        cfg["model"] = {
            "arch": "resnet",
            "width": width,
            "projector_hidden": 128,
            "projector_out": 32,
        }
    else:
        arch = "mlp" if rung == "mlp" else "linear"
        cfg["model"] = {"arch": arch, "pixels": 8, "projector_hidden": 256, "projector_out": 32}
    return cfg


# --------------------------------------------------------------------------- the flows

DENSE_POINTS = 400
"""Time points of a flow's uniform grid (``_Dense``); the fit interpolates linearly."""


class _Dense:
    """A flow from the seed on a uniform time grid (``solve(times)`` -> array over times),
    solved to ``horizon`` and solved again, further, only when asked past it. ``at(times)``
    interpolates linearly: nan before the seed (t < 0) and past a blow-up."""

    def __init__(self, solve, horizon: float) -> None:
        self.solve = solve
        self._solve_to(horizon)

    def _solve_to(self, horizon: float) -> None:
        self.tt = np.linspace(0.0, horizon, DENSE_POINTS)
        self.values = np.asarray(self.solve(self.tt), dtype=float)

    def at(self, times: np.ndarray) -> np.ndarray:
        times = np.asarray(times, dtype=float)
        if np.nanmax(times) > self.tt[-1]:
            self._solve_to(float(np.nanmax(times)))
        return _interp(self.tt, self.values, times)


def _interp(tt: np.ndarray, values: np.ndarray, t: np.ndarray) -> np.ndarray:
    """values (len(tt), ...) linearly interpolated at times t (nan outside tt or past a
    blow-up)."""
    flat = values.reshape(len(tt), -1)
    out = np.stack(
        [np.interp(t, tt, flat[:, i], left=np.nan, right=np.nan) for i in range(flat.shape[1])],
        1,
    )
    return out.reshape(len(t), *values.shape[1:])


def _matrix_flow(h: Hyper, rec: dict[str, np.ndarray], cov, loss: str, tt: np.ndarray):
    """W(t) of T1 (squared) or N1 (normalised) from the recorded W, Wp, Wa, with the
    measured X and X'."""
    W0, Wa0, Wp0 = (np.asarray(rec[k], dtype=float) for k in ("W_online", "W_target", "Wp"))
    X, Xp = cov["X"], cov["Xp"]
    if loss == "squared":
        sol = theory_matrix.integrate(h, W0, Wp0, Wa0, tt, X=X, Xp=Xp, on_failure="ignore")
    else:
        sol = normalised.integrate(
            h, W0, Wp0, Wa0, tt, X=X, Xp=Xp, c_loss=C_LOSS, on_failure="ignore"
        )
    return np.asarray(sol.W)


def correlation_along(W: np.ndarray, S: np.ndarray) -> np.ndarray:
    """W S W^T for a trajectory W (len(t), n2, n1): C12 = W X W^T (S = X), its centred
    form (S = X - mu mu^T) or C11 (S = X + X')."""
    return W @ S @ np.swapaxes(W, 1, 2)


AGREEMENT_CONSTANT = 5.0
"""Rung 1's bound (``agreement_bound``): the multiple of one flow-time unit's SGD noise that
the largest relative error over the records may reach."""


def agreement_bound(dt: float, batch: int) -> float:
    """Rung 1: how far the exact C12 = W X W^T of SGD may stray from T1 (relative, max over
    the records) from SGD noise and finite lr alone: AGREEMENT_CONSTANT sqrt(dt / B) + dt.

    The run's C12 is computed from its recorded W and the measured X, so no sampling noise
    enters. One step of lr with heavy-ball momentum m advances the flow by dt = lr / (1 - m)
    and adds dt times the minibatch gradient's error, of covariance Sigma_1 / B (Sigma_1:
    one sample's; theory.md section 1's T1 mapping). Over one unit of flow time, 1 / dt
    steps, the errors add to a deviation of W of variance dt tr(Sigma_1) / B; T1's
    contraction toward its trajectory (rate O(1) on T1's clock, as is one sample's gradient
    relative to W) keeps older noise from piling up, so W and C12 stray by O(sqrt(dt / B))
    relatively, the largest over the records by a few times that (AGREEMENT_CONSTANT). The
    finite step adds the O(dt) relative bias of the heavy-ball map against T1.
    """
    return AGREEMENT_CONSTANT * math.sqrt(dt / batch) + dt


def flow_error(C_run: np.ndarray, C_flow: np.ndarray) -> float:
    """max over records of ||C_run - C_flow||_F / ||C_flow||_F (rung 1's number)."""
    num = np.linalg.norm(C_run - C_flow, axis=(-2, -1))
    return float(np.max(num / np.linalg.norm(C_flow, axis=(-2, -1))))


def _mode_flow(h: Hyper, seed: dict[str, np.ndarray], loss: str, tt: np.ndarray) -> np.ndarray:
    """s_j along T7 (squared; one Hyper per mode for its sigma_j^2) or N2 (normalised)."""
    p, s, tau, sigma2 = (seed[k] for k in ("p", "s", "tau", "sigma2"))
    if loss != "squared":
        return _n2_amplitudes(h, p, s, tau, sigma2, tt)
    cols = []
    for j in range(s.size):
        hj = dataclasses.replace(h, sigma2=float(sigma2[j]))
        sol = theory_modes.integrate(hj, p[j], s[j], tt, tau[j], on_failure="ignore")
        cols.append(np.asarray(sol.s).reshape(len(tt)))
    return np.stack(cols, 1)


def _n2_amplitudes(h: Hyper, p, s, tau, sigma2, tt: np.ndarray) -> np.ndarray:
    """s_j(t) of N2 (c_L = C_LOSS) integrated in the mode
    amplitudes w_j = sqrt(s_j), wa_j = tau_j w_j of the diagonal linear model N2 reduces to:
    dw_j/dt = (ds_j/dt) / (2 w_j), dwa_j/dt = beta (w_j - wa_j) (SimSiam: wa == w), dp_j/dt
    as N2 (``normalised.mode_field``). The same flow as ``normalised.integrate_modes``,
    without its (p, s, tau) form's singularity: a mode that dies (s_j -> 0, p_j < 0) takes
    tau_j = wa_j / w_j to infinity in finite time while w_j, wa_j stay finite. LSODA: the
    flow of a network's modes turns stiff (RK45 took 17x the time on a rung-3 run)."""
    k = s.size
    simsiam = h.beta is None

    def rhs(_time: float, y: np.ndarray) -> np.ndarray:
        p, w = y[:k], y[k : 2 * k]
        wa = w if simsiam else y[2 * k :]
        dp, ds, _ = normalised.mode_field(h, p, w * w, wa / w, sigma2, c_loss=C_LOSS)
        parts = [dp, ds / (2.0 * w)] + ([] if simsiam else [h.beta * (w - wa)])
        return np.concatenate(parts)

    w0 = np.sqrt(s)
    y0 = np.concatenate([p, w0] + ([] if simsiam else [tau * w0]))
    res = solvers.solve_ivp_checked(rhs, y0, tt, method="LSODA", name="N2 (mode amplitudes)")
    return res.y[:, k : 2 * k] ** 2


def _along(bases: Sequence[np.ndarray], C: np.ndarray) -> np.ndarray:
    """u_j^T C_r u_j per record r and mode j (records' bases in ``bases``)."""
    return np.stack([np.einsum("ij,ik,kj->j", U, c, U) for U, c in zip(bases, C, strict=True)])


def _tracked_bases(C: np.ndarray) -> list[np.ndarray]:
    """Eigenvectors of each record's centred C12, tracked as the recorder tracks them."""
    tracker = diagnostics.EigenTracker()
    return [tracker.update(c)[1] for c in C]


def _top(s: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Indices of the (at most TOP_MODES) largest usable s_j, in index order."""
    order = np.argsort(-np.where(usable, s, -np.inf), kind="stable")
    return np.sort(order[: min(TOP_MODES, int(usable.sum()))])


# --------------------------------------------------------------------------- N2's seed

SEED_SHARE = 0.5
"""N2's seed record: the first at which the tracked modes carry at least this share of the
centred E||q||^2 = tr(Wp C11c Wp^T) (``_n2_seed``)."""


def _mode_state(sp, i: int, h: Hyper) -> tuple[dict[str, np.ndarray | None], np.ndarray]:
    """N2's (or T7's) per-mode seed at record i (N2's operational form: mode12_*, else the
    F_hat modes with sigma_j^2 = 0) and the usable modes (s_j > 0, tau_j finite, > 0 with an
    EMA target)."""
    prefix = "mode12" if "mode12_s" in sp else "mode"
    s = np.asarray(sp[f"{prefix}_s"][i], dtype=float)
    seed = {
        "s": s,
        "p": np.asarray(sp[f"{prefix}_p"][i]) if f"{prefix}_p" in sp else None,
        "tau": np.asarray(sp[f"{prefix}_tau"][i], dtype=float),
        "sigma2": np.clip(np.asarray(sp["mode12_sigma2"][i]), 0.0, None)
        if prefix == "mode12"
        else np.zeros(s.size),
    }
    usable = (s > 0) & np.isfinite(seed["tau"]) & (h.simsiam | (seed["tau"] > 0))
    return seed, usable


def _n2_seed(sp, h: Hyper, last: int) -> dict[str, Any]:
    """The record N2 is seeded at (theory.md 2b: A1, A3, A4; section 8: "an early record").

    N2's mean field a(t), b(t) is A4's N_q, N_a, kappa summed over the modes, exact only
    under A1 and A3. At initialisation Wp is not aligned with C12's eigenvectors: the
    modes carry ~1 % of the centred E||q||^2, their N_q is a tenth of the measured one
    (``seed_Nq_modes_over_measured``) and N2's field is ten times too strong. So the seed
    is the first record up to ``last`` where the modes carry SEED_SHARE of the centred
    E||q||^2 = tr(Wp C11c Wp^T) (the record with the largest share if none does), and N2
    keeps its own moments there. Not chosen: rescaling N2's moments by the measured ratios
    held constant (what the modes miss: the mean mode, the off-diagonal part of Wp) breaks
    N1's exact norm conservation tr(Wp^T G~ W^T) = 0, which needs a, b to be the modes' own
    moments: on a rung-3 run that flow's top mode grew at rate 2.2 and it blew up before
    t = 10; and a fitted scale would spend section 8's global numbers on an artefact of A1.
    Returns the index, the share and the modes' N_q over the measured N_q there.
    """
    best: dict[str, Any] = {"index": 0, "share": math.nan, "Nq_ratio": math.nan}
    for i in range(last + 1):
        seed, usable = _mode_state(sp, i, h)
        if seed["p"] is None or not usable.any() or "Wp" not in sp:
            break
        sc = normalised.mode_scalars(
            *(np.asarray(seed[k])[usable] for k in ("p", "s", "tau", "sigma2"))
        )
        m = np.asarray(sp["mean_f"][i], dtype=float)
        Wp = np.asarray(sp["Wp"][i], dtype=float)
        C11c = np.asarray(sp["C11"][i], dtype=float) - np.outer(m, m)
        share = float(sc.N_q**2 / np.trace(Wp @ C11c @ Wp.T))
        here = {"index": i, "share": share, "Nq_ratio": float(sc.N_q) / float(sp["N_q"][i])}
        if not best["share"] >= share:
            best = here
        if share >= SEED_SHARE:
            return here
    return best


# --------------------------------------------------------------------------- one run


def _centred_c12(sp) -> np.ndarray:
    C = np.asarray(sp["C12"], dtype=float)
    m = np.asarray(sp["mean_f"], dtype=float)
    C = (C + np.swapaxes(C, 1, 2)) / 2
    return C - m[:, :, None] * m[:, None, :]


def _balance_error(run: Run, h: Hyper, t: np.ndarray) -> float:
    """T2 (network form): max over records of ||D(t) - exp(-2 eta t) D(0)||_F relative to
    ||W_L W_L^T||_F, D = W_L W_L^T - Wp^T Wp / alpha_p (W_L: the last linear layer)."""
    sp = run.spectra
    D = np.asarray(sp["last_gram"]) - np.asarray(sp["Wp_gram"]) / h.alpha_p
    pred = np.exp(-2 * h.eta * t)[:, None, None] * D[0]
    num = np.linalg.norm(D - pred, axis=(1, 2))
    den = np.linalg.norm(np.asarray(sp["last_gram"]), axis=(1, 2))
    return float(np.max(num / den))


def _trends(sp, C: np.ndarray | None, first: int, last: int) -> dict[str, float]:
    """[T] Fig. 2's trends from the first to the last record (trainable linear Wp):
    alignment (mean cos(u_j, Wp u_j), top modes), off-diagonal share of U^T Wp U,
    asymmetry, negative eigenvalue mass of Wp (sum of negative real parts / sum of |.|)."""
    if "Wp" not in sp or C is None:
        return {}

    def state(i):
        Wp = np.asarray(sp["Wp"][i], dtype=float)
        A = np.abs(diagnostics.alignment_matrix(C[i], Wp))
        ev = np.linalg.eigvals(Wp).real
        return {
            "alignment": float(np.mean(diagnostics.alignment(C[i], Wp)[:TOP_MODES])),
            "offdiag": 1.0 - float(np.sum(np.diagonal(A) ** 2) / np.sum(A**2)),
            "asymmetry": float(diagnostics.asymmetry(Wp)),
            "negative_mass": float(np.sum(np.maximum(-ev, 0)) / np.sum(np.abs(ev))),
        }

    a, b = state(first), state(last)
    return {k: b[k] - a[k] for k in a}


def _window_steps(run: Run, steps: np.ndarray) -> np.ndarray:
    """The step each record's window estimate stands for: the mean over the batches of
    steps r - k + 1 .. r is C at the window's middle, r - (k - 1) / 2, to second order (the
    step-0 record is at fixed weights). Records without a window: their own steps."""
    if "mode12_s" not in run.spectra:
        return steps.astype(float)
    record = run.config.get("record") or {}
    k = min(int(record.get("batches", 8)), int(record.get("every", 1)) or 1)
    return np.where(steps > 0, steps - (k - 1) / 2, 0.0)


def _loss_of(config: dict[str, Any]) -> str:
    """method.loss; before it existed the trainer ran the normalised loss and
    ``compare.write_linear_run`` the squared error (theory.linear_model)."""
    if "loss" in (config.get("method") or {}):
        return config["method"]["loss"]
    return "squared" if (config.get("theory") or {}).get("linear_model") else "normalised"


TREND_SIGNS = {"alignment": 1, "offdiag": -1, "asymmetry": -1, "negative_mass": -1}
"""[T] Fig. 2: alignment rises; off-diagonal share, asymmetry, negative mass fall."""

_SCORES = ("time_scale", "err_flow", "err_flow_unfitted", "skill_persistence", "skill_loglinear")


def _score(t: np.ndarray, meas: np.ndarray, windows: protocol.Windows, pred_at) -> tuple:
    """Section 8 on one measurement: the baselines' errors; with a flow (``pred_at(times)``:
    the compared modes' s at flow times from the seed, nan before it), one time scale fitted
    on the fitting window and frozen, the skills on the held-out window and the grow/shrink
    AUC. Returns (scores, the flow's s at the records or None)."""
    fit, held = windows.fit, windows.held
    err_p = protocol.shape_error(protocol.persistence_baseline(meas, windows), meas[held])
    err_l = protocol.shape_error(protocol.loglinear_baseline(t, meas, windows), meas[held])
    out: dict[str, float] = {"err_persistence": err_p, "err_loglinear": err_l}
    if pred_at is None:
        return {**out, **dict.fromkeys((*_SCORES, "auc"), math.nan)}, None
    since = t - t[windows.seed]
    fit_only = np.full_like(since, np.nan)  # the fit looks at the fitting window alone
    fit_only[fit] = since[fit]

    def pred_fn(kappa: float) -> np.ndarray:
        return pred_at(kappa * since)

    (kappa,) = protocol.fit_globals(
        lambda x: protocol.shape_error(pred_at(float(x[0]) * fit_only)[fit], meas[fit]),
        [1.0],
        [TIME_SCALE_BOUNDS],
    )
    pred = pred_fn(float(kappa))
    err_f = protocol.shape_error(pred[held], meas[held])
    ref = fit[-1]
    change_run = protocol.log_shape(meas[-1]) - protocol.log_shape(meas[ref])
    change_flow = protocol.log_shape(pred[-1]) - protocol.log_shape(pred[ref])
    out.update(
        time_scale=float(kappa),
        err_flow=err_f,
        err_flow_unfitted=protocol.shape_error(pred_fn(1.0)[held], meas[held]),
        skill_persistence=protocol.skill(err_f, err_p),
        skill_loglinear=protocol.skill(err_f, err_l),
        auc=protocol.grow_shrink_auc(change_flow, change_run),
    )
    return out, pred


def _horizon(t: np.ndarray, windows: protocol.Windows) -> float:
    """How far the fit looks: the largest time scale over the fitting window, or the held-out
    window at time scale 1 (the unfitted error)."""
    since = t - t[windows.seed]
    return max(TIME_SCALE_BOUNDS[1] * float(since[windows.fit[-1]]), float(since[-1]))


def _covariances_of(run: Run, covariances) -> dict[str, np.ndarray] | None:
    if covariances is None and (run.path / COVARIANCES_FILE).is_file():
        with np.load(run.path / COVARIANCES_FILE) as npz:
            covariances = {k: npz[k] for k in npz.files}
    return covariances


def assess_run(
    run_dir: str | Path | Run, covariances: dict[str, np.ndarray] | None = None
) -> dict[str, Any]:
    """Score one run by theory.md section 8 (module docstring). Returns a dict of numbers
    (skills, AUC, identity error, fitted time scale, trends, A4 spreads), the flow's name,
    ``seed`` (which record the flow starts from and why; ``seed_step``), ``unavailable``
    (what the run does not record, by name) and ``curves`` (steps, the run's and the flow's
    log shapes of the compared modes) for the figure.

    With the encoder's weights and X, X' (the pixel rungs): the matrix flow T1 / N1 from
    record 0, scored on the run's exact C12 = W X W^T (``flow_error`` against
    ``agreement_bound``); the same scores on the window estimate of C12 beside them
    (``*_window``). Otherwise the mode flow T7 (record 0) or N2 (``_n2_seed``) on the
    window estimate's modes.

    covariances: X, Xp, mu of the input (default RUN/data_covariances.npz if present).
    """
    run = run_dir if isinstance(run_dir, Run) else load_run(run_dir)
    sp = run.spectra
    if len(sp.steps) == 0:
        raise ValueError(f"{run.path} has no spectra records: train it with record.every > 0")
    covariances = _covariances_of(run, covariances)
    h = run.hyper()
    steps = np.asarray(sp.steps)
    t_step = h.time_of_step(steps.astype(float))
    t = h.time_of_step(_window_steps(run, steps))
    loss = _loss_of(run.config)
    unavailable: list[str] = []
    if steps[0] != 0:
        unavailable.append("record at step 0 (seeded at the first record instead)")
    has_weights = "W_online" in sp and covariances is not None and "Wp" in sp
    C = None
    if "mode12_s" in sp:
        C = _centred_c12(sp)
        bases = _tracked_bases(C)
        meas_all = _along(bases, C)
    else:
        unavailable += [
            "C12/C11/C_to (seeded from F_hat: sigma_j^2 = 0, tau_j mixes tau and sigma_j^2)",
            "centred spectra (the mean mode is compared as a mode)",
            "A4 spreads (N_q, N_a, kappa, per-sample norms and cosines)",
        ]
        meas_all = np.asarray(sp["mode_s"], dtype=float)
    if has_weights:
        flow = "T1" if loss == "squared" else "N1"
    else:
        flow = "T7" if loss == "squared" else "N2"
    result: dict[str, Any] = {"run": str(run.path), "flow": flow, "loss": loss}
    i0, why = 0, "record 0"
    n2 = flow == "N2" and "N_q" in sp and "mode12_p" in sp
    if n2:
        chosen = _n2_seed(sp, h, len(steps) - 3)
        i0 = chosen["index"]
        reached = "the first where" if chosen["share"] >= SEED_SHARE else "none reaches it; best:"
        why = (
            f"record {i0} (step {int(steps[i0])}), {reached} the modes carry "
            f"{100 * chosen['share']:.0f}% (>= {100 * SEED_SHARE:.0f}%) of the centred E||q||^2 "
            f"(A1/A3); there the modes' N_q is {chosen['Nq_ratio']:.2f} x the measured"
        )
        result["seed_share"] = chosen["share"]
        result["seed_Nq_modes_over_measured"] = chosen["Nq_ratio"]
    result.update(seed=why, seed_step=int(steps[i0]))
    windows = protocol.split_windows(steps, seed=i0)
    seed, usable = _mode_state(sp, i0, h)
    if "mode12_s" in sp:
        seed["s"] = meas_all[i0]
    sel = _top(seed["s"], usable)
    meas = meas_all[:, sel]
    exact = None
    if has_weights:
        rec0 = {k: sp[k][i0] for k in ("W_online", "W_target", "Wp")}
        X, mu = covariances["X"], covariances["mu"]
        Xc = X - np.outer(mu, mu)

        def solve(times):
            W = _matrix_flow(h, rec0, covariances, loss, times)
            return np.stack([correlation_along(W, Xc), correlation_along(W, X)], 1)

        dense = _Dense(solve, _horizon(t_step, windows))
        W_run = np.asarray(sp["W_online"], dtype=float)
        C_exact = correlation_along(W_run, Xc)  # the run's C12 without sampling noise
        bases_exact = _tracked_bases(C_exact)
        s_exact = _along(bases_exact, C_exact)
        sel_exact = _top(s_exact[i0], s_exact[i0] > 0)
        exact = (s_exact[:, sel_exact], bases_exact, sel_exact)
        if loss == "squared":  # T1 is exact in expectation: absolute C12 (N1: shapes only)
            C_flow = dense.at(t_step - t_step[i0])[i0:, 1]
            result["flow_error"] = flow_error(correlation_along(W_run, X)[i0:], C_flow)
            C_flow = dense.at(t - t[i0])[i0:, 1]  # at the windows' middles
            result["flow_error_window"] = flow_error(np.asarray(sp["C12"], float)[i0:], C_flow)
            result["flow_error_bound"] = agreement_bound(h.dt, int(run.config["batch_size"]))

        def pred_at(times):
            return _along(bases, dense.at(times)[:, 0])[:, sel]
    elif seed["p"] is None:
        unavailable.append("the flow (the predictor is not linear: no p_j)")
        pred_at = None
    else:
        # every usable mode enters the flow (N2's modes share its mean field), top ones scored
        every = np.flatnonzero(usable)
        start = {k: np.asarray(v)[every] for k, v in seed.items()}
        cols = np.searchsorted(every, sel)
        dense = _Dense(
            lambda times: _mode_flow(h, start, loss, times)[:, cols],
            _horizon(t, windows),
        )
        pred_at = dense.at

    scores, pred = _score(t, meas, windows, pred_at)
    curves_run, curves_pred = meas, pred
    if exact is not None:  # rung 1 (and 2): scored on the exact C12; the window beside it
        result.update({f"{k}_window": v for k, v in scores.items()})
        s_exact, bases_exact, sel_exact = exact
        scores, pred = _score(
            t_step,
            s_exact,
            windows,
            lambda times: _along(bases_exact, dense.at(times)[:, 0])[:, sel_exact],
        )
        curves_run, curves_pred = s_exact, pred
    result.update(scores)
    if "last_gram" in sp and "Wp_gram" in sp:
        result["identity_error"] = _balance_error(run, h, t_step - t_step[0])
    else:
        unavailable.append("balance identity (no last-layer Gram / Wp^T Wp records)")
        result["identity_error"] = math.nan
    result["trends"] = _trends(sp, C, i0, len(steps) - 1)
    for key in ("cos_std", "norm_q_cv", "norm_a_cv", "kappa"):
        result[f"a4_{key}"] = float(np.nanmean(sp[key])) if key in sp else math.nan
    result["unavailable"] = unavailable
    result["built_in"] = protocol.construction_label(run)  # the trends, if a rule sets Wp
    result["curves"] = {
        "steps": steps.tolist(),
        "seed_step": int(steps[i0]),
        "fit_end": int(steps[windows.fit[-1]]),
        "run": protocol.log_shape(curves_run).tolist(),
        "flow": protocol.log_shape(curves_pred).tolist() if curves_pred is not None else None,
    }
    return result


# --------------------------------------------------------------------------- the ladder


def summarise(rung: str, results: Sequence[dict[str, Any]], settings: dict[str, Any]):
    """One rung over seeds: [mean, lo, hi] of each score, agrees by protocol.agrees."""
    iv = lambda key: protocol.interval([r[key] for r in results])  # noqa: E731
    out: dict[str, Any] = {"rung": rung, "flow": results[0]["flow"], "seeds": len(results)}
    for key in (
        "skill_persistence", "skill_loglinear", "identity_error", "auc", "time_scale",
        "err_flow", "err_persistence", "err_loglinear", "a4_cos_std", "a4_norm_q_cv",
        "flow_error", "flow_error_bound", "flow_error_window", "skill_persistence_window",
        "skill_loglinear_window", "seed_step", "seed_Nq_modes_over_measured",
    ):  # fmt: skip
        out[key] = iv(key) if key in results[0] else [math.nan] * 3
    out["seed"] = [r["seed"] for r in results]
    out["built_in"] = next((r["built_in"] for r in results if r.get("built_in")), "")
    out["flow_blew_up"] = int(sum(r["err_flow"] == math.inf for r in results))  # seeds
    out["agrees"] = protocol.agrees(out["skill_persistence"], out["skill_loglinear"])
    trends = {}
    for name, sign in TREND_SIGNS.items():
        values = [r["trends"][name] for r in results if name in r.get("trends", {})]
        if values:
            trends[name] = {
                "change": protocol.interval(values),
                "expected_sign": sign,
                "fraction_with_sign": float(np.mean(np.sign(values) == sign)),
            }
    out["trends"] = trends
    out["unavailable"] = sorted({u for r in results for u in r["unavailable"]})
    out["settings"] = settings
    out["runs"] = [r["run"] for r in results]
    return out


def verdicts(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One plain sentence per rung: what agrees and what does not, and why not."""

    def f(v):
        return "nan" if not np.isfinite(v[0]) else f"{v[0]:.2f} [{v[1]:.2f}, {v[2]:.2f}]"

    lines = []
    for r in rows:
        head = f"{r['rung']} ({r['flow']}, {r['seeds']} seeds): "
        if not np.isfinite(r["skill_persistence"][0]):
            why = "; ".join(r["unavailable"]) or "no flow"
            if r.get("flow_blew_up"):
                why = f"the flow blew up from the seed in {r['flow_blew_up']} of {r['seeds']} seeds"
            lines.append(head + f"not scored ({why})")
            continue
        verdict = "AGREES" if r["agrees"] else "does not agree"
        lines.append(
            head + f"{verdict}: skill vs persistence {f(r['skill_persistence'])}, vs "
            f"log-linear {f(r['skill_loglinear'])}, balance identity error "
            f"{f(r['identity_error'])}"
        )
    return lines


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    def f(v):
        return "nan" if not np.isfinite(v[0]) else f"{v[0]:.3g} [{v[1]:.3g}, {v[2]:.3g}]"

    lines = [
        "| rung | flow | seeds | skill vs persistence | skill vs log-linear | grow/shrink AUC "
        "| identity error (T2) | time scale | agrees |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['rung']} | {r['flow']} | {r['seeds']} | {f(r['skill_persistence'])} | "
            f"{f(r['skill_loglinear'])} | {f(r['auc'])} | {f(r['identity_error'])} | "
            f"{f(r['time_scale'])} | {'yes' if r['agrees'] else 'no'} |"
        )
    lines += [
        "",
        "Mean [95 % interval] over seeds. Skill = 1 - err(flow) / err(baseline) on the held-out",
        "window (RMS of log shape over the top modes); agrees: both intervals above zero.",
    ]
    if not any(r.get("built_in") for r in rows):
        lines.append(
            "Trainable linear predictor on every rung: nothing here is true by construction."
        )
    for r in rows:
        if np.isfinite(r.get("skill_persistence_window", [math.nan])[0]):
            exact = window = ""
            if np.isfinite(r["flow_error"][0]):
                exact = f"; flow error {f(r['flow_error'])} (bound {f(r['flow_error_bound'])})"
                window = f" flow error {f(r['flow_error_window'])},"
            lines.append(
                f"- {r['rung']}: scored on the exact C12 = W X W^T{exact}; on the window "
                f"estimate:{window} skill vs persistence {f(r['skill_persistence_window'])}, "
                f"vs log-linear {f(r['skill_loglinear_window'])}"
            )
        for seed in sorted(set(r.get("seed", []))):
            lines.append(f"- {r['rung']}: seeded at {seed}")
        built = f" ({r['built_in']})" if r.get("built_in") else ""
        for name, tr in r["trends"].items():
            lines.append(
                f"- {r['rung']}: [T] Fig. 2 {name}{built} change {f(tr['change'])}, expected "
                f"sign {tr['expected_sign']:+d}, held in {100 * tr['fraction_with_sign']:.0f}% "
                "of seeds"
            )
        for u in r["unavailable"]:
            lines.append(f"- {r['rung']}: unavailable: {u}")
    return "\n".join(lines) + "\n"


def _per_rung(value: int | Mapping[str, int], rungs: Sequence[str], name: str) -> dict:
    """One number for every rung, or a mapping rung -> number that names each of them."""
    if not isinstance(value, Mapping):
        return dict.fromkeys(rungs, value)
    if missing := [r for r in rungs if r not in value]:
        raise ValueError(f"{name} gives no value for rung(s) {', '.join(missing)}: add them")
    return {r: value[r] for r in rungs}


def run_ladder(
    out: str | Path,
    *,
    data: str | Path | None = None,
    rungs: Sequence[str] = RUNGS,
    seeds: int | Mapping[str, int] = 1,
    steps: int | Mapping[str, int] = 300,
    limit: int | None = None,
    width: int = 8,
    views: int = 8,
    lr: float = 0.05,
    log=print,
) -> list[dict[str, Any]]:
    """Train every rung over ``seeds`` seeds (one number, or one per rung) for ``steps``
    steps (likewise) into OUT/runs/, assess each run, write
    OUT/ladder.json and OUT/ladder.md; returns the per-rung summaries (what
    ``figures.ladder`` draws: the CLI writes OUT/ladder.png from them)."""
    from omegaconf import OmegaConf

    from linear_ssl.train import train
    from linear_ssl.train.augment import build_augment
    from linear_ssl.train.config import load_config
    from linear_ssl.train.data import dataset_stats, load_dataset, subset

    bad = [r for r in rungs if r not in RUNGS]
    if bad or not rungs:
        raise ValueError(f"--rungs {','.join(rungs)} is invalid: use some of {','.join(RUNGS)}")
    seeds_of, steps_of = _per_rung(seeds, rungs, "seeds"), _per_rung(steps, rungs, "steps")
    for rung in rungs:
        if seeds_of[rung] < 1 or steps_of[rung] < 3:
            raise ValueError(
                f"--seeds {seeds_of[rung]} / --steps {steps_of[rung]} of rung {rung}: "
                "need seeds >= 1 and steps >= 3"
            )
    out = Path(out)
    rows = []
    covariances = None
    for rung in rungs:
        results, settings = [], None
        for seed in range(seeds_of[rung]):
            run_dir = out / "runs" / f"{rung}-seed{seed}"
            cfg = rung_config(
                rung, data=data, steps=steps_of[rung], seed=seed, run_dir=run_dir, limit=limit,
                width=width, lr=lr,
            )  # fmt: skip
            cfg = load_config(None, cfg)
            settings = settings or OmegaConf.to_container(cfg, resolve=True)
            if cfg.model.arch == "linear" and covariances is None:
                d = cfg.data
                images = subset(load_dataset(d.name, d.root, "train").images, d.limit)
                mean, std = dataset_stats(d.name)
                augment = build_augment(cfg.augment.recipe, cfg.augment.image_size, mean, std)
                covariances = measure_covariances(images, augment, cfg.model.pixels, views)
            log(f"ladder: {rung} seed {seed} -> {run_dir}")
            train(cfg)
            if cfg.model.arch == "linear":
                np.savez(run_dir / COVARIANCES_FILE, **covariances)
            results.append(assess_run(run_dir))
        rows.append(summarise(rung, results, settings))
        rows[-1]["curves"] = results[0]["curves"]
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "ladder.json", json.dumps(rows, indent=1, default=float) + "\n")
    atomic_write_text(out / "ladder.md", markdown(rows))
    return rows
