"""Minibatch SGD on sampled Gaussian data: the algorithm whose slow limit is the flow T1.

Data x ~ N(0, X); two views x1 = x + e1, x2 = x + e2 with e ~ N(0, X'); with q = Wp W x1 and
z_a = StopGrad(Wa x2), the loss averaged over the batch is either
- loss="squared": 1/2 ||q - z_a||^2, whose slow limit is T1, or
- loss="cosine": -c_L cos(q, z_a) (c_L = 2: BYOL's 2 - 2 cos), the ground truth for N1 (2b);
symmetric_loss: the mean of that and the same with the views swapped (the same flow).
Optimiser: torch.optim.SGD semantics for W and Wp (coupled weight decay g += wd w, heavy-ball
v = m v + g, w -= lr v; the predictor has its own lr and weight decay and the same momentum,
so it decays at eta_p = alpha_p * predictor_weight_decay in flow time), then the EMA target
Wa <- ema Wa + (1 - ema) W once a step (SimSiam, ema None: Wa == W).
All seeds run at once (a leading seed axis, batched numpy matmul), drawn from one
numpy Generator: a run is reproducible for a given (seed, seeds).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import numpy as np

from linear_ssl.theory.matrix import _covariance, _matrix
from linear_ssl.theory.params import Hyper

__all__ = ["SGDRun", "simulate", "training_hyper"]

Loss = Literal["squared", "cosine"]


@dataclass(frozen=True)
class SGDRun:
    """A recorded SGD run.

    steps: (R,) recorded step indices (0, record_every, ..., steps); t: (R,) their flow time
    steps * h.dt. W, Wa: (R, seeds, n2, n1); Wp: (R, seeds, n2, n2). h: the flow the run
    follows in the slow limit (torch convention of T1, with dt). The per-step training
    hyper-parameters used: lr, predictor_lr, ema (None: SimSiam), weight_decay (of W),
    predictor_weight_decay (of Wp), momentum, loss and c_loss.
    """

    t: np.ndarray
    steps: np.ndarray
    W: np.ndarray
    Wp: np.ndarray
    Wa: np.ndarray
    h: Hyper
    lr: float
    predictor_lr: float
    ema: float | None
    weight_decay: float
    predictor_weight_decay: float
    momentum: float
    batch: int
    symmetric_loss: bool
    loss: Loss = "squared"
    c_loss: float = 1.0


def training_hyper(h: Hyper, lr: float, momentum: float = 0.0) -> dict:
    """T1 inverted (torch convention): per-step SGD settings whose slow limit is the flow h.

    dt = lr / (1 - momentum); predictor_lr = alpha_p lr; ema = 1 - beta dt (None for SimSiam);
    weight_decay = eta; predictor_weight_decay = eta_p / alpha_p (coupled weight decay on a
    parameter trained at lr a decays it at a wd / lr per unit of flow time).
    Hyper.from_training(lr, **result, momentum=momentum) gives h back.
    """
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr={lr!r} is invalid: it must be > 0")
    if not (0 <= momentum < 1):
        raise ValueError(f"momentum={momentum!r} is invalid: it must be in [0, 1)")
    dt = lr / (1 - momentum)
    if h.dt is not None and not np.isclose(h.dt, dt, rtol=1e-9, atol=0.0):
        raise ValueError(
            f"h.dt={h.dt} but lr/(1-momentum)={dt}: they must agree (or pass h with dt=None)"
        )
    ema = None
    if h.beta is not None:
        ema = 1.0 - h.beta * dt
        if not 0 <= ema < 1:
            raise ValueError(f"h.beta * dt = {h.beta * dt:.4g} exceeds 1: lower lr")
    return {
        "predictor_lr": h.alpha_p * lr,
        "ema": ema,
        "weight_decay": h.eta,
        "predictor_weight_decay": h.eta_p / h.alpha_p,
    }


def _sqrt_psd(C: np.ndarray) -> np.ndarray:
    """Symmetric square root of a PSD matrix (so z @ sqrt has covariance C for z ~ N(0, I))."""
    values, vectors = np.linalg.eigh(C)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def _seeded(name: str, value, shape: tuple[int, int], seeds: int) -> np.ndarray:
    """(n, m) shared by every seed or (seeds, n, m), as a writable (seeds, n, m) copy."""
    a = np.asarray(value, dtype=float)
    if a.ndim == 3 and a.shape == (seeds, *shape):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} contains non-finite entries (nan or inf): pass finite values")
        return a.copy()
    return np.broadcast_to(_matrix(name, a, shape), (seeds, *shape)).copy()


def _gradients(W, Wp, Wa, x1, x2, loss: Loss = "squared", c_loss: float = 1.0):
    """Batch-mean gradients (dJ/dW, dJ/dWp) of the loss J (module docstring) at q = Wp W x1.

    squared: dJ/dq = q - z_a; cosine: dJ/dq = -c_L (z_a / (|q| |z_a|) - (q.z_a) q / (|q|^3 |z_a|)).
    """
    f1 = x1 @ np.swapaxes(W, -1, -2)  # (seeds, batch, n2): online features W x1
    q = f1 @ np.swapaxes(Wp, -1, -2)
    z = x2 @ np.swapaxes(Wa, -1, -2)
    if loss == "squared":
        dq = q - z
    else:
        nq = np.linalg.norm(q, axis=-1, keepdims=True)
        nz = np.linalg.norm(z, axis=-1, keepdims=True)
        cos = np.sum(q * z, axis=-1, keepdims=True) / (nq * nz)
        dq = -c_loss * (z / nz - cos * q / nq) / nq
    dqT = np.swapaxes(dq, -1, -2) / x1.shape[1]
    return np.swapaxes(Wp, -1, -2) @ (dqT @ x1), dqT @ f1


def simulate(
    h: Hyper | None,
    W0,
    Wp0,
    Wa0,
    *,
    lr: float,
    steps: int,
    batch: int,
    X=None,
    Xp=None,
    predictor_lr: float | None = None,
    ema: float | None = None,
    weight_decay: float | None = None,
    predictor_weight_decay: float | None = None,
    momentum: float = 0.0,
    seeds: int = 1,
    seed: int = 0,
    record_every: int = 1,
    symmetric_loss: bool = False,
    loss: Loss = "squared",
    c_loss: float = 1.0,
) -> SGDRun:
    """Run minibatch SGD (module docstring) for `steps` steps, recording every `record_every`.

    Two ways to give the per-step hyper-parameters:
    - h (a Hyper) with lr and momentum: the settings whose slow limit is the flow h, by the
      inverse of Hyper.from_training's torch convention (``training_hyper``): predictor_lr =
      alpha_p lr, ema = 1 - beta dt (None if SimSiam), weight_decay = eta,
      predictor_weight_decay = eta_p / alpha_p, dt = lr/(1-momentum). The training settings
      must then be left None.
    - h None with the training settings: predictor_lr (None: lr), ema (None: SimSiam),
      weight_decay (None: 0), predictor_weight_decay (None: weight_decay, as one torch
      parameter group), momentum; run.h = Hyper.from_training(...) (torch convention, coupled
      decay: eta_p = alpha_p * predictor_weight_decay).
    loss: "squared" (T1) or "cosine" (N1, with c_loss = c_L > 0).
    W0 (n2, n1), Wp0 (n2, n2), Wa0 (n2, n1): shared by all seeds, or with a leading seed axis;
    Wa0 is ignored for SimSiam. X None: I; Xp None: h.sigma2 I (0 when h is None).
    seeds: independent runs at once; seed: the numpy Generator seed.
    """
    if loss not in ("squared", "cosine"):
        raise ValueError(f"loss={loss!r} is invalid: use 'squared' (T1) or 'cosine' (N1)")
    if not (np.isfinite(c_loss) and c_loss > 0):
        raise ValueError(f"c_loss={c_loss!r} is invalid: it must be finite and > 0")
    if h is not None:
        settings = {
            "predictor_lr": predictor_lr,
            "ema": ema,
            "weight_decay": weight_decay,
            "predictor_weight_decay": predictor_weight_decay,
        }
        given = [k for k, v in settings.items() if v is not None]
        if given:
            raise ValueError(
                f"pass either h or the training settings, not both (got h and {given})"
            )
        settings = training_hyper(h, lr, momentum)
        keys = ("predictor_lr", "ema", "weight_decay", "predictor_weight_decay")
        predictor_lr, ema, weight_decay, predictor_weight_decay = (settings[k] for k in keys)
        h = dataclasses.replace(h, dt=lr / (1 - momentum))
    else:
        predictor_lr = lr if predictor_lr is None else predictor_lr
        weight_decay = 0.0 if weight_decay is None else weight_decay
        if predictor_weight_decay is None:
            predictor_weight_decay = weight_decay
        h = Hyper.from_training(
            lr, predictor_lr, ema, weight_decay, momentum,
            predictor_weight_decay=predictor_weight_decay,
        )  # fmt: skip
    for name, value in [("steps", steps), ("batch", batch), ("seeds", seeds)]:
        if int(value) != value or value < 1:
            raise ValueError(f"{name}={value!r} is invalid: it must be a positive integer")
    if int(record_every) != record_every or record_every < 1:
        raise ValueError(f"record_every={record_every!r} is invalid: it must be a positive integer")

    W = np.asarray(W0, dtype=float)
    if W.ndim not in (2, 3):
        raise ValueError(f"W0 has shape {W.shape}: pass (n2, n1), or (seeds, n2, n1)")
    n2, n1 = W.shape[-2:]
    W = _seeded("W0", W, (n2, n1), seeds)
    Wp = _seeded("Wp0", Wp0, (n2, n2), seeds)
    Wa = W.copy() if ema is None else _seeded("Wa0", Wa0, (n2, n1), seeds)
    sqrt_X = _sqrt_psd(_covariance("X", X, n1, 1.0))
    sqrt_Xp = _sqrt_psd(_covariance("Xp", Xp, n1, h.sigma2))

    rng = np.random.default_rng(seed)
    vW, vWp = np.zeros_like(W), np.zeros_like(Wp)
    record = np.unique(np.r_[np.arange(0, steps + 1, record_every), steps])
    recorded = set(record.tolist())
    Ws, Wps, Was = [W.copy()], [Wp.copy()], [Wa.copy()]
    for step in range(1, steps + 1):
        z = rng.standard_normal((3, seeds, batch, n1))
        x = z[0] @ sqrt_X
        x1, x2 = x + z[1] @ sqrt_Xp, x + z[2] @ sqrt_Xp
        target = W if ema is None else Wa
        gW, gWp = _gradients(W, Wp, target, x1, x2, loss, c_loss)
        if symmetric_loss:
            gW2, gWp2 = _gradients(W, Wp, target, x2, x1, loss, c_loss)
            gW, gWp = (gW + gW2) / 2, (gWp + gWp2) / 2
        vW = momentum * vW + gW + weight_decay * W
        vWp = momentum * vWp + gWp + predictor_weight_decay * Wp
        W = W - lr * vW
        Wp = Wp - predictor_lr * vWp
        Wa = W if ema is None else ema * Wa + (1 - ema) * W
        if not np.all(np.isfinite(W)):
            raise FloatingPointError(f"SGD diverged at step {step}: lower lr")
        if step in recorded:
            Ws.append(W.copy())
            Wps.append(Wp.copy())
            Was.append(Wa.copy())
    return SGDRun(
        t=record * h.dt,
        steps=record,
        W=np.array(Ws),
        Wp=np.array(Wps),
        Wa=np.array(Was),
        h=h,
        lr=lr,
        predictor_lr=predictor_lr,
        ema=ema,
        weight_decay=weight_decay,
        predictor_weight_decay=predictor_weight_decay,
        momentum=momentum,
        batch=batch,
        symmetric_loss=symmetric_loss,
        loss=loss,
        c_loss=c_loss,
    )
