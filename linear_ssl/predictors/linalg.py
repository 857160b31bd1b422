"""Linear algebra the R-rules share: eigh of a PSD estimate, power iteration, the spectral
radius, and the matrix / diagonal algebra the [E] iterations are written against.

Nothing here reads a value on the host (the checks go through ``require``), except the
eigensolver itself: torch's ``linalg.eigh`` checks its convergence flag on the host.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from linear_ssl._arrays import (
    Array,
    check_psd_spectrum,
    check_symmetric,
    eye,
    float_matrix,
    positive_int,
    require,
)

__all__ = [
    "Algebra",
    "at_least",
    "diagonals",
    "from_spectrum",
    "matrices",
    "power_lambda_max",
    "psd_eigh",
    "require_bounded",
    "spectral_radius",
]

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def at_least(xp: Any, x: Array, value: float) -> Array:
    """max(x, value) elementwise, the floor built on x's device (a Python scalar would be
    copied there from the host)."""
    return xp.maximum(x, xp.full_like(x, value))


def spectral_radius(M: Array, squarings: int = 20) -> Array:
    """max_j |lambda_j(M)| without a general eigensolver, by repeated squaring.

    M is squared ``squarings`` times with Frobenius renormalisation: A = M^N / ||M^N||_F,
    N = 2^squarings. Two estimates come out of it:
    - Gelfand's g = ||M^N||_F^(1/N) (accumulated in logs), always convergent, with a
      relative error ~log(C n N^(m-1)) / N (C: non-normality, m: largest Jordan block);
    - the one-step ratio r = ||M A||_F = ||M^(N+1)||_F / ||M^N||_F, exact up to
      (|lambda_2| / rho)^(2N) when M is normal (symmetric, orthogonal), or when its dominant
      eigenvalue is real and semisimple, whatever the multiplicity.
    r is returned when it agrees with g within 4 log(2n) / N (g's own accuracy), g
    otherwise (e.g. a non-normal complex dominant pair). Returns a 0-d array of M's
    namespace (no host synchronisation); 0 for M = 0 or nilpotent M.
    """
    xp, M = float_matrix("M", M)
    tiny = xp.finfo(M.dtype).tiny
    norm = at_least(xp, xp.linalg.matrix_norm(M), tiny)
    log_g, A = xp.log(norm), M / norm
    weight = 1.0
    for _ in range(positive_int("squarings", squarings)):
        A = A @ A
        norm = at_least(xp, xp.linalg.matrix_norm(A), tiny)
        weight /= 2.0
        log_g, A = log_g + weight * xp.log(norm), A / norm
    g = xp.exp(log_g)
    r = xp.linalg.matrix_norm(M @ A)
    tolerance = 4 * math.log(2 * M.shape[0]) * weight
    return xp.where(xp.abs(r - g) <= tolerance * g, r, g)


def power_lambda_max(xp: Any, F: Array, iterations: int = 100, diagonal: bool = False) -> Array:
    """Rayleigh quotient after ``iterations`` power steps on symmetric PSD F (0 for F = 0).

    The start vector v_0,i = frac(i g + 1/4) - 1/2 (g the golden ratio's fraction) is built
    on F's device: fixed, never zero, and with no host-to-device copy.
    diagonal=True: F is the diagonal f of a diagonal matrix; then the same quotient in
    closed form, v_k = f^k v_0: sum f^(2k+1) v_0^2 / sum f^(2k) v_0^2 (scaled by max |f|).
    """
    index = xp.arange(F.shape[0], dtype=F.dtype, device=F.device)
    v = (index * _GOLDEN + 0.25) % 1.0 - 0.5
    tiny = xp.finfo(F.dtype).tiny
    if diagonal:
        weight = v**2 * (xp.abs(F) / at_least(xp, xp.max(xp.abs(F)), tiny)) ** (2 * iterations)
        return xp.sum(weight * F) / at_least(xp, xp.sum(weight), tiny)
    for _ in range(iterations):
        v = v / at_least(xp, xp.linalg.vector_norm(v), tiny)
        v = F @ v
    v = v / at_least(xp, xp.linalg.vector_norm(v), tiny)
    return xp.sum(v * (F @ v))


def psd_eigh(name: str, F: Array) -> tuple[Any, Array, Array]:
    """(namespace, eigenvalues ascending, eigenvectors) of F, checked symmetric and PSD."""
    xp, F = float_matrix(name, F)
    F = check_symmetric(name, F, xp)
    s, U = xp.linalg.eigh(F)
    check_psd_spectrum(name, s, xp)
    return xp, s, U


def from_spectrum(U: Array, p: Array) -> Array:
    """U diag(p) U^T."""
    return (U * p[None, :]) @ U.T


@dataclass(frozen=True)
class Algebra:
    """Products of square matrices, or of diagonal matrices held as their diagonals.

    The [E] iterations are written once against it: on a diagonal input every product of
    diagonal matrices is diagonal, so the same iteration runs elementwise in O(n).
    """

    mm: Callable[[Array, Array], Array]
    one: Array  # the identity
    fro: Callable[[Array], Array]  # Frobenius norm
    T: Callable[[Array], Array]  # transpose


def matrices(xp: Any, M: Array) -> Algebra:
    return Algebra(lambda A, B: A @ B, eye(xp, M), xp.linalg.matrix_norm, lambda A: A.T)


def diagonals(xp: Any, d: Array) -> Algebra:
    return Algebra(lambda a, b: a * b, xp.ones_like(d), xp.linalg.vector_norm, lambda a: a)


def require_bounded(rule: str, X: Array, bound: float | Array, alg: Algebra, needs: str) -> None:
    """The divergence check of an iteration (R5-R8): ||X||_F finite and <= bound.

    ``bound`` is twice what the iterate can reach on an input the iteration's theory
    covers; an iteration run outside it grows without limit (to inf or 1e145), so this
    turns that into a one-line error saying what the input must be (``needs``).
    """
    size = alg.fro(X)
    require(
        size <= bound,
        f"{rule} diverged: {needs}",
        lambda: f"||iterate||_F = {float(size):.3g}, bound {float(bound):.3g}",
    )
