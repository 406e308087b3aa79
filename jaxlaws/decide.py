"""Decisions by gradient: compute-optimal size, tokens and epochs; mixing weights over pools.

For a compute budget ``C = 6 N D`` the loss-minimising ``N`` (and ``D = C / 6N``) under a
fitted law: in closed form for Chinchilla, by Newton's method on ``log N`` along the
iso-FLOP line otherwise (the data-constrained law with a unique-token budget ``U``, where
the epochs ``D / U`` are chosen too). Budgets are vmapped, so a frontier over many budgets,
or over bootstrap samples of the parameters, is one call. For data filtering, the sampling
weights over pools that minimise the predicted error at a budget of samples
(:func:`optimize_mixture`, a thin layer on :func:`jaxlaws.propose_mixture`), beside the
authors' top-k strategy.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxlaws.fit import FitResult
from jaxlaws.laws import (
    ChinchillaParams,
    DataConstrainedParams,
    FilteringMixtureFreeParams,
    FilteringMixtureParams,
    chinchilla,
    chinchilla_optimal,
    data_constrained,
    effective_data,
    filtering_mixture,
    max_passes_for,
)
from jaxlaws.propose import propose_mixture, topk_weights

__all__ = [
    "allocate",
    "allocation_sensitivity",
    "frontier",
    "Frontier",
    "mixture_sensitivity",
    "Allocation",
    "isoflop_optimum",
    "optimize_mixture",
    "MixtureDecision",
    "simplex_grid",
    "topk_weights",
]


class Allocation(NamedTuple):
    """The compute-optimal allocation for each budget (arrays broadcast over budgets).

    Attributes:
        C: compute budget (FLOPs).
        N: parameters.
        D: training tokens, ``C / (6 N)``.
        loss: predicted loss at ``(N, D)``.
        epochs: ``D / U`` (``nan`` without a unique-token budget).
        effective_epochs: ``D' / U``, what the repeated tokens are worth in fresh ones.
        converged: whether the line search met its tolerance (always true in closed form).
    """

    C: jnp.ndarray
    N: jnp.ndarray
    D: jnp.ndarray
    loss: jnp.ndarray
    epochs: jnp.ndarray
    effective_epochs: jnp.ndarray
    converged: jnp.ndarray

    def frame(self) -> pd.DataFrame:
        """One row per budget (per parameter set and budget for a stack); the epoch columns
        only where a unique-token budget was given."""
        cols = {k: np.ravel(np.asarray(v)) for k, v in self._asdict().items()}
        if np.all(np.isnan(cols["epochs"])):
            del cols["epochs"], cols["effective_epochs"]
        return pd.DataFrame(cols)

    def interval(self, level: float = 0.9) -> pd.DataFrame:
        """For a stack of parameter sets (a bootstrap's samples: fields of shape ``(S, B)``):
        each budget's median and central ``level`` interval of ``N``, ``D``, the loss (and
        the epochs), one row per budget."""
        if np.ndim(self.N) != 2:
            raise ValueError("interval needs an allocation of a stack of parameter sets (shape (S, B))")
        if not 0 < level < 1:
            raise ValueError(f"level must be between 0 and 1, got {level!r}")
        q = [50.0, (1 - level) / 2 * 100, (1 + level) / 2 * 100]
        out = {"C": np.asarray(self.C)[0] if np.ndim(self.C) == 2 else np.asarray(self.C)}
        names = ["N", "D", "loss"] + ([] if np.all(np.isnan(np.asarray(self.epochs))) else ["epochs"])
        tag = f"{round(level * 100):d}"
        for name in names:
            mid, lo, hi = np.percentile(np.asarray(getattr(self, name)), q, axis=0)
            out[name], out[f"{name}_lo{tag}"], out[f"{name}_hi{tag}"] = mid, lo, hi
        out["converged"] = np.asarray(self.converged).all(axis=0)
        return pd.DataFrame(out)


def isoflop_optimum(loss_of_log_n, x0, *, max_steps: int = 100, tol: float = 1e-12):
    """Minimise a 1-D function of ``log N`` by safeguarded Newton steps from ``x0``.

    Each step is Newton's where the curvature is positive, a gradient step of unit length
    in ``log N`` otherwise, and is halved until the loss decreases. It stops when the step
    or the decrease is negligible; the laws have corners (``N = N_opt(U)``, ``D = U``)
    where the optimum can sit, and there the decrease vanishes first. Returns
    ``(x, converged)``.
    """
    g1 = jax.grad(loss_of_log_n)
    g2 = jax.grad(g1)

    def cond(s):
        x, k, done = s
        return (~done) & (k < max_steps)

    def body(s):
        x, k, _ = s
        g, h = g1(x), g2(x)
        step = jnp.where(h > 0, -g / jnp.where(h > 0, h, 1.0), -jnp.sign(g))
        step = jnp.clip(step, -2.0, 2.0)
        f0 = loss_of_log_n(x)

        def shrink(c):
            t, _ = c
            return t * 0.5, loss_of_log_n(x + t * 0.5 * step)

        def need(c):
            t, f = c
            return (f > f0) & (t > 1e-12)

        t, f_new = jax.lax.while_loop(need, shrink, (1.0, loss_of_log_n(x + step)))
        accept = f_new <= f0
        x_new = jnp.where(accept, x + t * step, x)
        # converged: the step is negligible, or no step gains anything at working precision
        # (a minimum at a corner of the law, e.g. where N reaches N_opt(U) or D reaches U)
        done = (jnp.abs(t * step) < tol * jnp.maximum(1.0, jnp.abs(x)) + 1e-14) | (
            f0 - jnp.where(accept, f_new, f0) <= 1e-15 * jnp.abs(f0)
        )
        return x_new, k + 1, done

    x, _, done = jax.lax.while_loop(cond, body, (jnp.asarray(x0, jnp.float64), 0, jnp.asarray(False)))
    return x, done


@jax.jit
def _chinchilla_allocation(params, C):
    N, D = chinchilla_optimal(params, C)
    nan = jnp.full_like(N, jnp.nan)
    return Allocation(C, N, D, chinchilla(params, N, D), nan, nan, jnp.ones_like(N, dtype=bool))


@jax.jit
def _data_constrained_allocation(params, C, U):
    base = ChinchillaParams(params.E, params.A, params.B, params.alpha, params.beta)

    def one(c, u):
        n0, _ = chinchilla_optimal(base, c)

        def loss(log_n):
            n = jnp.exp(log_n)
            return jnp.log(data_constrained(params, n, c / (6.0 * n), u))

        x, ok = isoflop_optimum(loss, jnp.log(n0))
        N = jnp.exp(x)
        D = c / (6.0 * N)
        return Allocation(
            c, N, D, data_constrained(params, N, D, u), D / u, effective_data(params, D, u) / u, ok
        )

    return jax.vmap(one)(C, U)


def allocate(params, C, U=None) -> Allocation:
    """The loss-minimising ``N`` and ``D = C / 6N`` for each compute budget ``C``.

    .. math:: (N^*, D^*) = \\arg\\min_{6 N D = C} L(N, D[, U])

    Args:
        params: fitted parameters (:class:`~jaxlaws.laws.ChinchillaParams` or
            :class:`~jaxlaws.laws.DataConstrainedParams`), or a :class:`~jaxlaws.FitResult`
            of either law. Parameters with a leading axis (e.g. ``bootstrap(...).samples``)
            give one allocation per parameter set, in one batched call: the decision's
            uncertainty.
        C: compute budget(s) in FLOPs (scalar or array).
        U: unique tokens available (data-constrained law only; broadcast with ``C``).
            Without it the data-constrained law has unlimited data and its Chinchilla
            constants give the closed form.

    Returns:
        An :class:`Allocation` with one entry per budget (shape ``(S, B)`` for ``S``
        parameter sets).

    Raises:
        ValueError: for parameters of another law, or ``U`` given for Chinchilla.

    Example:
        >>> from jaxlaws import laws
        >>> from jaxlaws.decide import allocate
        >>> a = allocate(laws.MUENNIGHOFF_C4, 1e22, U=25e9)
        >>> f"{float(a.N[0]):.4g} params, {float(a.D[0]):.4g} tokens, {float(a.epochs[0]):.3g} epochs"
        '7.026e+09 params, 2.372e+11 tokens, 9.49 epochs'

    References:
        Hoffmann et al. 2022, Eq. 4; Muennighoff et al. 2023, Section 5 and App. B.
    """
    if isinstance(params, FitResult):
        params = params.params
    if not isinstance(params, ChinchillaParams | DataConstrainedParams):
        raise ValueError(
            f"allocate needs Chinchilla or data-constrained parameters, got {type(params).__name__}"
        )
    C = _budgets(C, "compute budget C")
    if U is not None and isinstance(params, ChinchillaParams):
        raise ValueError("a unique-token budget U needs the data_constrained law's parameters")
    if U is not None:
        U = _budgets(U, "unique-token budget U")
        if U.shape[0] not in (1, C.shape[0]):
            raise ValueError(
                f"U has {U.shape[0]} values for {C.shape[0]} budgets: give one, or one per budget"
            )
        U = jnp.broadcast_to(U, C.shape)
    params = type(params)(*(jnp.asarray(v, jnp.float64) for v in params))
    _check_allocation_params(params)
    if params.alpha.ndim == 1:  # a stack of parameter sets: one allocation each
        out = jax.vmap(lambda p: _allocate(p, C, U))(params)
    else:
        out = _allocate(params, C, U)
    for name in ("N", "D", "loss"):
        bad = ~np.isfinite(np.asarray(getattr(out, name)))
        if bad.any():
            c = float(np.broadcast_to(np.asarray(C), bad.shape)[bad][0])
            raise ValueError(
                f"the optimal {name} at C={c:g} is outside float64's range: the budget is too "
                "far from the fitted range for these parameters"
            )
    return out


def _budgets(values, what: str) -> jnp.ndarray:
    """Budgets as a float64 array, each finite and positive (else one line naming it)."""
    arr = np.atleast_1d(np.asarray(values, np.float64))
    if arr.size == 0:
        raise ValueError(f"no {what} given")
    if arr.ndim != 1:
        raise ValueError(f"the {what}s must be a number or a 1-D array, got shape {arr.shape}")
    bad = ~(np.isfinite(arr) & (arr > 0))
    if bad.any():
        raise ValueError(f"every {what} must be finite and positive, got {float(arr[bad][0]):g}")
    return jnp.asarray(arr)


def _check_finite(params) -> None:
    """Every field of ``params`` finite (a decision from a NaN parameter is NaN)."""
    for name in params._fields:
        v = np.ravel(np.asarray(getattr(params, name), np.float64))
        if not np.all(np.isfinite(v)):
            raise ValueError(f"parameter {name} is not finite: {float(v[~np.isfinite(v)][0]):g}")


def _check_allocation_params(params) -> None:
    """The law's constants as the allocation needs them: ``A, B, alpha, beta > 0``
    (``E`` and ``R*`` finite); else the optimum is not a minimum (or NaN)."""
    _check_finite(params)
    for name in params._fields:
        v = np.ravel(np.asarray(getattr(params, name)))
        if name in ("A", "B", "alpha", "beta", "R_D_star", "R_N_star") and np.any(v <= 0):
            raise ValueError(
                f"parameter {name} must be positive for a compute-optimal allocation, "
                f"got {float(v[v <= 0][0]):g}"
            )


def _allocate(params, C, U):
    if isinstance(params, DataConstrainedParams):
        if U is None:
            base = ChinchillaParams(params.E, params.A, params.B, params.alpha, params.beta)
            return _chinchilla_allocation(base, C)
        return _data_constrained_allocation(params, C, U)
    return _chinchilla_allocation(params, C)


def allocation_sensitivity(params, C, U=None) -> dict[str, np.ndarray]:
    """How the optimal model size moves with each fitted parameter: ``d log N* / d theta``.

    By the implicit function theorem at the optimum of ``g(x) = log L(e^x, C / 6e^x)``:
    ``dx*/dtheta = -g_{x theta} / g_{xx}``, with all derivatives by autodiff (exact, no
    differentiation through the solver's iterations). ``d log D* / d theta`` is its negative.

    Args:
        params: Chinchilla or data-constrained parameters (one set), or a ``FitResult``.
        C: budget(s); U: unique-token budget(s) for the data-constrained law.

    Returns:
        ``{parameter name: d log N* / d parameter}``, one value per budget.
    """
    if isinstance(params, FitResult):
        params = params.params
    alloc = allocate(params, C, U)
    params = type(params)(*(jnp.asarray(v, jnp.float64) for v in params))
    C = jnp.atleast_1d(jnp.asarray(C, jnp.float64))
    Ub = None if U is None else jnp.broadcast_to(jnp.asarray(U, jnp.float64), C.shape)

    def g(x, p, c, u):
        n = jnp.exp(x)
        if isinstance(p, DataConstrainedParams) and u is not None:
            return jnp.log(data_constrained(p, n, c / (6.0 * n), u))
        base = ChinchillaParams(p.E, p.A, p.B, p.alpha, p.beta)
        return jnp.log(chinchilla(base, n, c / (6.0 * n)))

    gx = jax.grad(g, argnums=0)
    out = {name: [] for name in params._fields}
    for i in range(C.shape[0]):
        x = jnp.log(alloc.N[i])
        u = None if Ub is None else Ub[i]
        gxx = jax.grad(gx, argnums=0)(x, params, C[i], u)
        gxt = jax.grad(gx, argnums=1)(x, params, C[i], u)
        for name in params._fields:
            value = float(-getattr(gxt, name) / gxx)
            if not np.isfinite(value):
                raise ValueError(
                    f"d log N*/d {name} at C={float(C[i]):g} is not finite (the loss is flat in "
                    "N there, in float64): choose budgets nearer the fitted range"
                )
            out[name].append(value)
    return {k: np.array(v) for k, v in out.items()}


class Frontier(NamedTuple):
    """Compute-optimal allocations over a range of budgets, and where repetition stops paying.

    Attributes:
        table: one row per budget: ``C, N, D, loss, epochs, effective_epochs``,
            ``repeat_value`` (what one more repeated token is worth relative to a fresh one,
            ``dD'/dD = exp(-R_D / R*_D)``) and ``param_value`` (the same for one more
            parameter beyond ``U_N``, ``exp(-R_N / R*_N)``).
        epochs_half_value: epochs ``1 + R*_D ln 2`` beyond which a repeated token is worth
            less than half a fresh one.
        C_epochs_stop_paying: the smallest budget of the range whose optimum repeats data
            past ``epochs_half_value`` (``nan`` if none).
        C_params_stop_paying: the smallest budget whose optimal excess parameters are worth
            less than half (``param_value < 1/2``; ``nan`` if none).
    """

    table: pd.DataFrame
    epochs_half_value: float
    C_epochs_stop_paying: float
    C_params_stop_paying: float


def frontier(params, C, U) -> Frontier:
    """The compute-optimal frontier under a unique-token budget ``U``, budget by budget.

    Args:
        params: :class:`~jaxlaws.laws.DataConstrainedParams` (or a ``FitResult``).
        C: budgets (e.g. ``np.geomspace(1e19, 1e25, 61)``).
        U: unique tokens available.

    Returns:
        A :class:`Frontier`: per budget the optimum (one batched :func:`allocate` call) and
        the marginal value of repeated tokens and excess parameters there, with the budgets
        beyond which extra epochs or parameters stop paying (worth less than half).
    """
    if isinstance(params, FitResult):
        params = params.params
    if not isinstance(params, DataConstrainedParams):
        raise ValueError("frontier needs the data_constrained law's parameters")
    if U is None:
        raise ValueError("frontier needs U, the unique tokens available (without it no data repeats)")
    a = allocate(params, C, U)
    N, D = np.asarray(a.N), np.asarray(a.D)
    U = np.broadcast_to(np.asarray(U, np.float64), N.shape)
    U_D = np.minimum(U, D)
    R_D = np.maximum(D / U_D - 1.0, 0.0)
    # U_N = min(N_opt(U_D), N): the parameters worth training on U_D tokens
    p = params
    log_G = (np.log(p.alpha) + np.log(p.A) - np.log(p.beta) - np.log(p.B)) / (p.alpha + p.beta)
    U_N = np.minimum(np.exp(log_G + p.beta / p.alpha * (np.log(U_D) + log_G)), N)
    R_N = np.maximum(N / U_N - 1.0, 0.0)
    table = a.frame()
    table["repeat_value"] = np.exp(-R_D / float(p.R_D_star))
    table["param_value"] = np.exp(-R_N / float(p.R_N_star))
    half = 1.0 + float(p.R_D_star) * np.log(2.0)
    C_arr = table["C"].to_numpy()
    stop_e = C_arr[table["repeat_value"].to_numpy() < 0.5]
    stop_p = C_arr[table["param_value"].to_numpy() < 0.5]
    return Frontier(
        table=table,
        epochs_half_value=half,
        C_epochs_stop_paying=float(stop_e.min()) if stop_e.size else float("nan"),
        C_params_stop_paying=float(stop_p.min()) if stop_p.size else float("nan"),
    )


# ----------------------------------------------------------------------------------------
# Data filtering: mixing weights over pools for a budget of samples
# ----------------------------------------------------------------------------------------


class MixtureDecision(NamedTuple):
    """Best sampling weights per budget, beside the authors' discrete top-k strategy.

    Attributes:
        n: budgets (samples seen), shape ``(B,)``.
        weights: gradient-optimised weights on the simplex, ``(B, P)``.
        error: predicted error at ``weights``, ``(B,)``.
        topk_errors: predicted error of the top-k pools mixed uniformly, ``(B, P)``
            (column ``k - 1`` for the best ``k`` pools, in the order given).
        best_k: the best ``k`` per budget, ``(B,)``.
        steps: solver steps of the best start, ``(B,)``.
        passes: passes over each pool at ``weights``, ``w_i n / N_i``, ``(B, P)``.
        on_pass: whether a pool's weight sits on a kink of the law (a whole number of
            passes, where optima often sit), ``(B, P)``.
    """

    n: jnp.ndarray
    weights: jnp.ndarray
    error: jnp.ndarray
    topk_errors: jnp.ndarray
    best_k: jnp.ndarray
    steps: jnp.ndarray
    passes: jnp.ndarray | None = None
    on_pass: jnp.ndarray | None = None

    def frame(self, pool_names=None) -> pd.DataFrame:
        P = self.weights.shape[-1]
        names = list(pool_names) if pool_names is not None else [f"pool{i}" for i in range(P)]
        out = pd.DataFrame({"n": np.asarray(self.n)})
        w = np.asarray(self.weights)
        w = np.where(w < 1e-12, 0.0, w)  # below the solver's resolution: a pool not used
        for i, name in enumerate(names):
            out[f"w_{name}"] = w[:, i]
        if self.passes is not None:
            for i, name in enumerate(names):
                out[f"passes_{name}"] = np.asarray(self.passes)[:, i]
            on = np.asarray(self.on_pass)
            out["on_pass"] = [",".join(n for n, o in zip(names, row) if o) for row in on]
        out["error"] = np.asarray(self.error)
        out["best_k"] = np.asarray(self.best_k)
        out["best_topk_error"] = np.asarray(self.topk_errors).min(axis=1)
        out["gain_over_topk"] = out["best_topk_error"] - out["error"]
        return out


def simplex_grid(n_pools: int, step: float = 0.05) -> np.ndarray:
    """Every weight vector on the simplex with entries that are multiples of ``step``."""
    m = int(round(1.0 / step))

    def rec(p, left):
        if p == 1:
            return [[left]]
        return [[i] + rest for i in range(left + 1) for rest in rec(p - 1, left - i)]

    return np.array(rec(n_pools, m), dtype=np.float64) / m


def _check_mixture(params, sizes, n, weights=None):
    """One-line errors for a mixture decision's inputs: finite positive pool sizes and
    budgets, one ``b`` and ``tau`` per pool (``tau > 0``), weights on the simplex."""
    if not isinstance(params, FilteringMixtureParams | FilteringMixtureFreeParams):
        raise ValueError(
            f"a mixture decision needs filtering_mixture parameters, got {type(params).__name__}"
        )
    sizes = np.asarray(sizes, np.float64)
    if sizes.ndim != 1 or sizes.size == 0:
        raise ValueError(f"sizes must be one unique-sample count per pool, got shape {sizes.shape}")
    bad = ~(np.isfinite(sizes) & (sizes > 0))
    if bad.any():
        raise ValueError(
            f"every pool size must be finite and positive, got {float(sizes[bad][0]):g} "
            f"(pool {int(np.argmax(bad))})"
        )
    n = np.atleast_1d(np.asarray(n, np.float64))
    bad = ~(np.isfinite(n) & (n > 0))
    if bad.any():
        raise ValueError(f"every budget (samples seen) must be finite and positive, got {float(n[bad][0]):g}")
    P = sizes.shape[0]
    for name in ("a", "b", "tau"):
        if name in params._fields:
            v = np.asarray(getattr(params, name), np.float64)
            if v.shape[-1:] != (P,):
                raise ValueError(
                    f"parameter {name} has {v.shape[-1] if v.ndim else 1} pools' values, sizes has {P} pools"
                )
    _check_finite(params)
    tau = np.ravel(np.asarray(params.tau, np.float64))
    if np.any(tau <= 0):
        raise ValueError(f"every tau (half-life in passes) must be positive, got {float(tau[tau <= 0][0]):g}")
    for name, sign in (("b", -1.0), ("a", 1.0), ("n0", 1.0), ("d", 1.0)):
        if name in params._fields:
            v = np.ravel(np.asarray(getattr(params, name), np.float64))
            if np.any(sign * v <= 0):
                what = "negative (error falls with data)" if sign < 0 else "positive"
                raise ValueError(f"every {name} must be {what}, got {float(v[sign * v <= 0][0]):g}")
    if weights is not None:
        w = np.asarray(weights, np.float64)
        if w.shape != (P,):
            raise ValueError(f"weights must have one entry per pool ({P}), got shape {w.shape}")
        if np.any(~np.isfinite(w)) or np.any(w < 0) or abs(w.sum() - 1.0) > 1e-9:
            raise ValueError(f"weights must be on the simplex (nonnegative, summing to 1), got {w.tolist()}")
    return jnp.asarray(sizes), jnp.asarray(n)


def optimize_mixture(
    params,
    sizes,
    n,
    *,
    form: str = "paper",
    starts: int = 2,
    seed: int = 0,
    max_steps: int = 100,
    max_passes: int | None = None,
    devices: int | None = None,
) -> MixtureDecision:
    """Sampling weights over pools that minimise the predicted error at each budget.

    A thin layer on :func:`~jaxlaws.propose_mixture`, the one mixture-decision engine: for
    each budget ``n`` (samples seen) it minimises ``filtering_mixture(params, n, sizes, w)``
    over the simplex, exactly across the law's kinks (a pool completing a pass), and
    evaluates the authors' top-k strategy beside it. All budgets run in one batched call.

    Args:
        params: fitted :class:`~jaxlaws.laws.FilteringMixtureParams` (pools in quality
            order, best first, for the top-k comparison). A stack of parameter sets (``b``
            of shape ``(S, P)``, e.g. bootstrap samples) gives the decision for each (one
            call per set, compiled once): fields of the result gain a leading axis ``S``.
        sizes: unique samples per pool, ``(P,)``.
        n: budget(s) in samples seen.
        form: the law's form (``"paper"`` or ``"reference_code"``).
        starts: starts solved per budget: the uniform mixture and the lowest of the top-k
            mixtures and Dirichlet draws (from ``seed``), as :func:`~jaxlaws.propose_mixture`
            chooses them.
        max_steps: Newton steps per start.
        max_passes: passes summed term by term (default: enough for the largest budget).
        devices: split the budgets across this many local devices (default: one, as
            :func:`~jaxlaws.propose_mixture`); results agree to rounding whatever the number
            (:mod:`jaxlaws.sharding`).

    Returns:
        A :class:`MixtureDecision`: the best weights and error per budget, and the errors
        of every top-k uniform mixture with the best ``k``.

    References:
        Goyal et al. 2024, Sections 4-5 (top-k pools); ``LAWS.md`` section 3.
    """
    from jaxlaws.laws.filtering import FILTERING_MIXTURE

    sizes, n = _check_mixture(params, sizes, n)
    for name, value, least in (
        ("starts", starts, 1),
        ("max_steps", max_steps, 1),
        ("max_passes", max_passes, 2),
    ):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least
        ):
            raise ValueError(f"{name} must be a whole number >= {least}, got {value!r}")
    if max_passes is None:
        max_passes = max_passes_for(np.max(np.asarray(n)) / np.min(np.asarray(sizes)) + 1)
    law = FILTERING_MIXTURE.with_options(form=form, max_passes=int(max_passes))
    params = type(params)(*(np.asarray(v, np.float64) for v in params))
    stacked = params.b.ndim == 2
    per_pool = {"a", "b", "tau"}
    S = params.b.shape[0] if stacked else 1

    def one_set(i):
        if not stacked:
            return params
        return type(params)(
            *(
                v[i] if v.ndim == (2 if name in per_pool else 1) else v
                for name, v in zip(params._fields, params)
            )
        )

    out = []
    for i in range(S):
        prop = propose_mixture(
            law,
            one_set(i),
            budgets=np.asarray(n),
            unique_tokens=np.asarray(sizes),
            starts=starts,
            seed=seed,
            max_steps=max_steps,
            devices=devices,
        )
        out.append(
            (
                prop.weights[0],
                prop.metrics[0, :, 0],
                prop.topk_objective[0],
                prop.steps[0],
                prop.epochs[0],
                prop.bound[0] == 3,
            )
        )
    w, err, topk, steps, passes, on_pass = (jnp.asarray(np.stack(a)) for a in zip(*out))
    if stacked:
        n = jnp.broadcast_to(n, err.shape)
    else:
        w, err, topk, steps, passes, on_pass = (a[0] for a in (w, err, topk, steps, passes, on_pass))
    return MixtureDecision(n, w, err, topk, jnp.argmin(topk, axis=-1) + 1, steps, passes, on_pass)


def mixture_sensitivity(params, sizes, n, weights=None, *, form: str = "paper") -> dict[str, np.ndarray]:
    """How the optimal weights move with each fitted parameter: ``dw*/dtheta`` at budget ``n``.

    The law has a kink wherever a pool completes a pass, and optima often sit on one: such
    a pool's weight is locked there (it stays on the boundary under a small change of the
    parameters), as is a pool at weight 0. The other pools share the remaining mass through
    softmax logits ``z``; by the implicit function theorem at the optimum of
    ``g(z) = log(y - d)``, ``dz*/dtheta = -H^+ g_{z theta}`` (``H^+`` the pseudo-inverse: the
    logits are free along ``z + c``) and ``dw*/dtheta = (dw/dz) dz*/dtheta``. Locked weights
    have zero sensitivity.

    Args:
        params: :class:`~jaxlaws.laws.FilteringMixtureParams` (one set).
        sizes: pool sizes ``(P,)``; n: one budget.
        weights: the optimal weights (default: :func:`optimize_mixture` at ``n``).

    Returns:
        ``{field: array}``: ``(P,)`` for scalar fields (``n0``, ``d``), ``(P, P)`` for per-pool
        fields (``[i, j] = dw_i / d b_j``).
    """
    sizes, n = _check_mixture(params, sizes, n, weights)
    if n.shape != (1,):
        raise ValueError(f"mixture_sensitivity takes one budget, got {n.shape[0]}")
    n = n[0]
    params = type(params)(*(jnp.asarray(v, jnp.float64) for v in params))
    if weights is None:
        weights = optimize_mixture(params, sizes, n, form=form).weights[0]
    w_opt = np.asarray(weights, np.float64)
    passes = w_opt * float(n) / np.asarray(sizes)
    on_boundary = (np.abs(passes - np.round(passes)) < 1e-6 * np.maximum(passes, 1.0)) & (passes > 0.5)
    locked = on_boundary | (w_opt < 1e-9)
    free = np.flatnonzero(~locked)
    P = w_opt.shape[0]
    out = {name: np.zeros((P,) if getattr(params, name).ndim == 0 else (P, P)) for name in params._fields}
    if free.size < 2:
        return out
    mass = 1.0 - w_opt[locked].sum()
    max_passes = max_passes_for(float(n) / np.min(np.asarray(sizes)) + 1)

    def w_of(zf):
        return jnp.asarray(w_opt).at[free].set(mass * jax.nn.softmax(zf))

    def g(zf, p):
        y = filtering_mixture(p, n, sizes, w_of(zf), form=form, max_passes=max_passes)
        return jnp.log(y - p.d) if form == "paper" else jnp.log(y)

    zf = jnp.log(jnp.asarray(w_opt[free] / mass))
    gz = jax.grad(g, argnums=0)
    H = jax.jacfwd(gz, argnums=0)(zf, params)
    G = jax.jacfwd(gz, argnums=1)(zf, params)  # d(gz)/d(params), per field
    Hp = jnp.linalg.pinv(H, hermitian=True)
    Jw = jax.jacfwd(w_of)(zf)  # (P, F)
    for name in params._fields:
        gzt = getattr(G, name).reshape(free.size, -1)
        dw = np.asarray(Jw @ (-Hp @ gzt))
        out[name] = dw[:, 0] if getattr(params, name).ndim == 0 else dw
    return out
