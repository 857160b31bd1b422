"""The rule registry, derived from the specs of ``rules.RULES``: ``get_rule`` builds a
configured rule ``fn(F, C_to) -> Wp`` with R9 (ridge) and R10 (EMA) on top, and
``PartitionedRule`` is R1's partition variant."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from linear_ssl._arrays import (
    Array,
    finite,
    float_vector,
    positive_int,
    same_library,
    same_shape,
)
from linear_ssl.predictors.rules import RULES, ridge

__all__ = ["PartitionedRule", "PredictorRule", "available_rules", "get_rule", "needs_cross"]

_SOURCES = ("C_to", "F")


def _aliases() -> dict[str, str]:
    return {alias: spec.name for spec in RULES.values() for alias in spec.aliases}


def available_rules() -> list[str]:
    """The rule names ``get_rule`` accepts (it takes their specs' aliases too)."""
    return list(RULES)


def _defaults(name: str) -> dict[str, Any]:
    """The rule's own parameters and their defaults, from its function's signature."""
    spec = RULES[name]
    parameters = list(inspect.signature(spec.function).parameters.values())
    return {p.name: p.default for p in parameters[2 if spec.inputs == "both" else 1 :]}


def _rule_parameters(name: str) -> list[str]:
    extra = ["source"] if RULES[name].inputs == "sigma" else []
    return [*_defaults(name), *extra, "ridge", "ema"]


class PredictorRule:
    """A configured R-rule: ``rule(F, C_to) -> Wp`` (F = C_oo; C_to may be None when unused).

    Built by ``get_rule``. ``needs_cross`` says whether the rule reads C_to (so a trainer
    accumulates it only then). ``ridge`` (R9) adds ridge * I; ``ema`` (R10, default off)
    smooths the output across calls, Wp_ema <- ema Wp_ema + (1 - ema) Wp (the first output
    stored as is). With ema the rule is stateful (``state_dict`` / ``load_state_dict``
    / ``reset``); do not use it inside an ODE solver's right-hand side.

    ``spectrum(f, c)`` is the rule on diagonal inputs F = diag(f), C_to = diag(c), without
    a decomposition: the diagonal of ``rule(diag(f), diag(c))`` (every R-rule maps
    diagonal inputs to a diagonal Wp), available when ``has_spectrum`` (no ema, and for
    R1 a scalar c: a per-eigenvalue c follows eigh's order, which ties leave undefined).
    """

    def __init__(self, name: str, params: dict[str, Any]) -> None:
        spec = RULES[name]
        params = dict(params)
        self.name = name
        self.ridge = finite("ridge", params.pop("ridge", 0.0))
        ema = params.pop("ema", None)
        if ema is not None:
            ema = finite("ema", ema)
            if not 0.0 <= ema < 1.0:
                raise ValueError(f"ema={ema!r} is invalid: it must be in [0, 1), or None (off)")
        self.ema = ema or None
        source = params.pop("source", "C_to")
        if spec.inputs == "sigma" and source not in _SOURCES:
            raise ValueError(f"source={source!r} is invalid: use 'C_to' (default) or 'F'")
        self.inputs = source if spec.inputs == "sigma" else spec.inputs
        self.needs_cross = self.inputs in ("both", "C_to")
        self._spec = spec
        self._params = {**_defaults(name), **params}
        self.params = {**params, "ridge": self.ridge, "ema": self.ema}
        if spec.inputs == "sigma":
            self.params["source"] = source
        self._state: Array | None = None
        self.has_spectrum = self.ema is None and isinstance(params.get("c", 0.0), (int, float))
        if all(isinstance(v, (int, float, str, type(None))) for v in params.values()):
            self._raw(np.eye(2), np.eye(2))  # a dry run validates the values at build time

    def _raw(self, F: Array, C_to: Array | None) -> Array:
        if self.inputs == "F":
            return self._spec.function(F, **self._params)
        if self.inputs == "C_to":
            return self._spec.function(C_to, **self._params)
        return self._spec.function(F, C_to, **self._params)

    def __call__(self, F: Array, C_to: Array | None = None) -> Array:
        if self.needs_cross and C_to is None:
            raise ValueError(
                f"rule {self.name!r} needs the cross-correlation C_to = E[f_a f^T]: pass it"
            )
        Wp = self._raw(F, C_to)
        if self.ridge:
            Wp = ridge(Wp, self.ridge)
        if self.ema is not None:
            if self._state is not None:
                Wp = self.ema * self._state + (1.0 - self.ema) * Wp
            self._state = Wp
        return Wp

    def spectrum(self, f: Array, c: Array | None = None) -> Array:
        """p = diagonal of rule(diag(f), diag(c)) in O(n) (see the class docstring)."""
        if not self.has_spectrum:
            raise ValueError(
                f"rule {self.name!r} with {self.params} has no spectral form (ema, or an array"
                " c): call it on the matrices"
            )
        if self.needs_cross and c is None:
            raise ValueError(f"rule {self.name!r} needs the diagonal of C_to: pass c")
        _, f = float_vector("f", f)
        if c is not None:
            same_library("f", f, "c", c)
            _, c = float_vector("c", c)
            same_shape("f", f, "c", c)
        function = self._spec.diagonal
        if self.inputs == "F":
            p = function(f, **self._params)
        elif self.inputs == "C_to":
            p = function(c, **self._params)
        else:
            p = function(f, c, **self._params)
        return p + self.ridge if self.ridge else p

    def reset(self) -> None:
        """Forget the EMA state (R10)."""
        self._state = None

    def state_dict(self) -> dict[str, Array | None]:
        """The EMA state (R10) as plain arrays, for checkpoints."""
        return {"ema_state": self._state}

    def load_state_dict(self, state: dict[str, Array | None]) -> None:
        if set(state) != {"ema_state"}:
            raise ValueError(f"state has keys {sorted(state)}: expected ['ema_state']")
        self._state = state["ema_state"]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"PredictorRule({self.name!r}, {args})"


def _canonical(name: str) -> str:
    aliases = _aliases()
    key = aliases.get(name, name)
    if key not in RULES:
        raise ValueError(
            f"unknown predictor rule {name!r}: valid ones are {', '.join(available_rules())}"
            f" (aliases {', '.join(aliases)})"
        )
    return key


def get_rule(
    name: str, partitions: int | None = None, partition_seed: int = 0, **params: Any
) -> PredictorRule | PartitionedRule:
    """The R-rule ``name`` with its parameters: ``fn(F, C_to) -> Wp``.

    e.g. get_rule("directpred", eps=0.1), get_rule("stiefel", ridge=0.3),
    get_rule("newton_schulz", source="F", ema=0.9). Every rule takes ridge (R9, default 0)
    and ema (R10, default None: off); the [E] iterations (visser, newton_schulz, ns2,
    stiefel) take source="C_to" (default) or "F". An unknown name or parameter raises a
    one-line ValueError listing the valid ones. ``partitions=K`` (an F-only rule, no ema)
    returns R1's partition variant, ``PartitionedRule`` (K random hyperplanes drawn from
    ``partition_seed``).
    """
    if partitions is not None:
        return PartitionedRule(get_rule(name, **params), partitions, partition_seed)
    key = _canonical(name)
    valid = _rule_parameters(key)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(
            f"rule {key!r} has no parameter {', '.join(unknown)}: valid ones are {', '.join(valid)}"
        )
    return PredictorRule(key, params)


def needs_cross(name: str, **params: Any) -> bool:
    """Whether the configured rule reads C_to (a trainer accumulates it only then)."""
    return get_rule(name, **params).needs_cross


# --------------------------------------------------------------------------- R1 partition variant


class PartitionedRule:
    """R1's partition variant: a piecewise-linear predictor from per-region F_hat.

    Read as the reference code does ([T]'s code, ``predictor_reg="partition"``): the
    *input space* of the predictor (the features f, dimension n) is cut by K random
    hyperplanes w_k ~ N(0, I_n) (drawn once from ``seed``). For each k a sample lies on
    the positive side when w_k . f >= the batch mean of w_k . f (each view thresholded
    by its own batch). F_hat is estimated separately on each side of each hyperplane
    (``PartitionedCorrelation``), the wrapped rule gives Wp[k, side] = rule(F_hat[k, side]),
    and a sample f is predicted by the mean over the K hyperplanes of the Wp of its side:
    p(f) = (1/K) sum_k Wp[k, side_k(f)] f. The rule must read F only (no C_to) and carry
    no ema (R10 state would mix the 2K matrices).
    """

    def __init__(self, rule: PredictorRule, partitions: int, seed: int = 0) -> None:
        self.partitions = positive_int("partitions", partitions)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"partition_seed={seed!r} is invalid: it must be an integer")
        if rule.needs_cross or rule.ema is not None:
            raise ValueError(
                f"rule {rule.name!r} with partitions needs an F-only rule without ema: "
                "use directpred, directset, directcopy or source='F'"
            )
        self.rule, self.seed, self.name = rule, seed, rule.name
        self.needs_cross, self.has_spectrum = False, False
        self.params = {**rule.params, "partitions": self.partitions, "partition_seed": seed}
        self._planes: dict[tuple[Any, ...], Array] = {}

    def planes(self, f: Array) -> Array:
        """The (n, K) hyperplane normals, in f's namespace, dtype and device (copied there
        once, then kept: no host-to-device copy per batch)."""
        key = (type(f), f.shape[1], f.dtype, f.device)
        if key not in self._planes:
            normals = np.random.default_rng(self.seed).standard_normal((key[1], self.partitions))
            self._planes[key] = array_namespace(f).asarray(normals, dtype=f.dtype, device=f.device)
        return self._planes[key]

    def sides(self, f: Array) -> Array:
        """(batch, K) booleans: sample b lies on the positive side of hyperplane k."""
        xp = array_namespace(f)
        projection = f @ self.planes(f)
        return projection >= xp.mean(projection, axis=0)[None, :]

    def __call__(self, F_sides: Array, C_to: Array | None = None) -> Array:
        """(K, 2, n, n) Wp from (K, 2, n, n) F_hat; [:, 0] positive sides, [:, 1] negative."""
        xp = array_namespace(F_sides)
        if tuple(F_sides.shape[:2]) != (self.partitions, 2) or F_sides.ndim != 4:
            raise ValueError(
                f"F_sides has shape {tuple(F_sides.shape)}: expected ({self.partitions}, 2, n, n)"
            )
        rows = [xp.stack([self.rule(F_sides[k, j]) for j in range(2)]) for k in range(len(F_sides))]
        return xp.stack(rows)

    def predict(self, f: Array, Wp_sides: Array) -> Array:
        """p(f) = (1/K) sum_k Wp[k, side_k(f)] f for each row f of the (batch, n) array."""
        xp = array_namespace(f, Wp_sides)
        side = xp.permute_dims(self.sides(f), (1, 0))[:, :, None]  # (K, batch, 1)
        transposed = xp.permute_dims(Wp_sides, (0, 1, 3, 2))
        positive, negative = f[None, :, :] @ transposed[:, 0], f[None, :, :] @ transposed[:, 1]
        return xp.mean(xp.where(side, positive, negative), axis=0)

    def __repr__(self) -> str:
        return f"PartitionedRule({self.rule!r}, partitions={self.partitions}, seed={self.seed})"
