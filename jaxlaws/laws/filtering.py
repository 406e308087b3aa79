"""Data filtering under repetition (Goyal et al. 2024): one pool and mixtures of pools.

Notation: ``n`` samples seen (compute), a pool of ``N`` unique samples, ``p = n / N``
passes. The utility of a sample at its ``(k+1)``-th pass is ``b_k = b 0.5^(k / tau)``
(``tau`` is the half-life in passes). Writing the log-ratio of the ``j``-th pass as
``log(clip(p, j, j+1) / j)`` makes every logarithm's argument at least one, so the laws
and their gradients stay finite below one pass, at pass boundaries and at zero weight.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from jaxlaws import _constraints as C
from jaxlaws.laws._law import Law

__all__ = [
    "FilteringParams",
    "FilteringMixtureParams",
    "FilteringMixtureFreeParams",
    "filtering",
    "filtering_mixture",
    "effective_tau",
    "passes_needed",
    "max_passes_for",
    "params_from_reference_code",
    "FORMS",
    "FILTERING",
    "FILTERING_MIXTURE",
    "DEFAULT_MAX_PASSES",
    "GOYAL_FIG4",
]

REFERENCE = (
    "Goyal, Maini, Lipton, Raghunathan and Kolter, 'Scaling Laws for Data Filtering -- "
    "Data Curation cannot be Compute Agnostic', CVPR 2024 (Eqs. 1-3, Theorem 1, App. G)."
)

#: The forms of the law. ``"paper"`` (default): Eq. 3, ``+ d`` outside the repetition
#: product. ``"reference_code"``: the authors' code, ``d`` added before the repetition
#: ratios multiply (``func_effective_utility``). ``"effective_data"``: the appendix
#: variant, ``y = a n_eff^b + d`` with ``n_eff = sum_k (samples of pass k) 0.5^(k/tau)``
#: (``func_effective_data``; single pool only).
FORMS = ("paper", "reference_code", "effective_data")

#: Passes summed term by term (at most, and by default); the passes past them are summed in
#: closed form (see ``_decayed_log_passes``), so memory and time do not grow with the number
#: of passes: a pool of one sample seen 1e12 times costs what 1024 passes cost.
DEFAULT_MAX_PASSES = 1024

_LOG2 = math.log(2.0)


class FilteringParams(NamedTuple):
    """One pool: ``y = a n^b + d`` before repetition; ``tau`` is the utility half-life."""

    a: jnp.ndarray
    b: jnp.ndarray
    tau: jnp.ndarray
    d: jnp.ndarray


class FilteringMixtureParams(NamedTuple):
    """Pools sharing the anchor ``n0`` and floor ``d`` (the authors' parametrisation).

    ``b`` and ``tau`` have one entry per pool (last axis); pool ``i``'s amplitude is
    ``a_i = n0^(-b_i)``, i.e. every pool's curve is anchored at ``n = n0``.
    """

    b: jnp.ndarray
    tau: jnp.ndarray
    n0: jnp.ndarray
    d: jnp.ndarray


class FilteringMixtureFreeParams(NamedTuple):
    """Pools with a free amplitude ``a_i`` each (shared floor ``d``)."""

    a: jnp.ndarray
    b: jnp.ndarray
    tau: jnp.ndarray
    d: jnp.ndarray


def params_from_reference_code(a, b, tau, d, normalizer=1e5) -> FilteringParams:
    """Single-pool parameters from the authors' code form ``(a n / normalizer)^b``.

    Their ``a`` sits inside the power; ours is the prefactor ``(a / normalizer)^b``.
    The same ``a`` shared by several pools is the anchor ``n0 = normalizer / a``.
    """
    a, b = jnp.asarray(a, jnp.float64), jnp.asarray(b, jnp.float64)
    return FilteringParams(
        a=(a / normalizer) ** b,
        b=b,
        tau=jnp.asarray(tau, jnp.float64),
        d=jnp.asarray(d, jnp.float64),
    )


def passes_needed(n, N) -> int:
    """The smallest ``max_passes`` that sums every pass of ``n`` samples over ``N`` term by term."""
    return int(np.ceil(np.max(np.asarray(n, dtype=float) / np.asarray(N, dtype=float)))) + 1


def max_passes_for(passes) -> int:
    """The ``max_passes`` to compile for data with these pass counts: the smallest power of
    two above the largest (few distinct compilations), at most ``DEFAULT_MAX_PASSES`` (the
    rest are summed in closed form)."""
    top = float(np.max(np.asarray(passes, dtype=float)))
    if not np.isfinite(top):
        raise ValueError(f"the pass counts (samples / pool size) must be finite, got {top}")
    need = max(int(math.ceil(top)) + 1, 2)
    return int(min(2 ** math.ceil(math.log2(need)), DEFAULT_MAX_PASSES))


#: Gauss-Legendre nodes and weights on (-1, 1) for the closed-form tail of the pass sum.
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(24)


def _log_tail(passes, c, K):
    """``sum_{j>=K} r^j log(clip(p, j, j+1) / j)`` with ``r = e^-c``, as an integral.

    With ``log(1 + 1/j) = 1/(j + 1/2) + O(j^-3)`` the midpoint rule turns the sum into
    ``r^(-1/2) int_K^max(p, K) e^(-c u) / u du`` (relative error ``(c^2 + 2c/K + 2/K^2) / 24``
    of this tail, itself below ``r^K log(p/K)``). In ``s = log u`` the integrand
    ``e^(-c e^s)`` is smooth, and past ``u = K + 50/c`` below ``e^-50`` of its start, so 24
    Gauss-Legendre nodes on ``[log K, log min(p, K + 50/c)]`` give it to 1e-9 of the whole
    sum (``tests/test_filtering.py``): a fixed, small amount of work however many passes.
    """
    hi = jnp.log(jnp.maximum(jnp.minimum(passes, K + 50.0 / c), K))
    lo = math.log(K)
    mid, half = 0.5 * (hi + lo), 0.5 * (hi - lo)
    s = mid[..., None] + half[..., None] * _GL_NODES
    integral = half * jnp.sum(_GL_WEIGHTS * jnp.exp(-c[..., None] * jnp.exp(s)), axis=-1)
    return jnp.exp(0.5 * c) * integral


def _decayed_log_passes(passes, tau, max_passes):
    """``sum_{j>=1} 0.5^(j / tau) log(clip(passes, j, j+1) / j)`` over the last axis added.

    ``passes`` and ``tau`` broadcast together. Passes ``1 .. K-1`` (``K = max_passes``) are
    summed term by term, the rest in closed form (:func:`_log_tail`): memory and time do
    not grow with the number of passes.
    """
    j = jnp.arange(1, max_passes, dtype=jnp.float64)
    p = passes[..., None]
    decay = jnp.exp(-_LOG2 * j / tau[..., None])
    body = jnp.sum(decay * jnp.log(jnp.clip(p, j, j + 1.0) / j), axis=-1)
    return body + _log_tail(passes, _LOG2 / tau, float(max_passes))


def _decayed_passes(passes, tau, max_passes):
    """``min(p, 1) + sum_{j>=1} 0.5^(j / tau) (clip(p, j, j+1) - j)``: passes worth of data.

    Passes from ``K = max_passes`` on are summed exactly in closed form (a geometric sum
    ``r^K (1 - r^(M-K)) / (1 - r) + r^M (p - M)``, ``M = floor(p)``, ``r = 0.5^(1/tau)``).
    """
    j = jnp.arange(1, max_passes, dtype=jnp.float64)
    p = passes[..., None]
    decay = jnp.exp(-_LOG2 * j / tau[..., None])
    body = jnp.sum(decay * (jnp.clip(p, j, j + 1.0) - j), axis=-1)
    K = float(max_passes)
    c = _LOG2 / tau
    M = jnp.maximum(jnp.floor(passes), K)
    full = jnp.exp(-c * K) * -jnp.expm1(-c * (M - K)) / -jnp.expm1(-c)
    tail = full + jnp.exp(-c * M) * (jnp.maximum(passes, K) - M)
    return jnp.minimum(passes, 1.0) + body + tail


def _check_form(form, allowed=FORMS):
    if form not in allowed:
        raise ValueError(f"unknown form {form!r}; choose one of {list(allowed)}")


def filtering(
    params: FilteringParams,
    n,
    N,
    *,
    form: str = "paper",
    max_passes: int = DEFAULT_MAX_PASSES,
    tau_size: float | None = None,
):
    r"""Error after ``n`` samples from one pool of ``N`` unique samples, with repetition.

    .. math::
        y(n) = a\, n_1^{b_0} \prod_{j \ge 1} \left(\frac{n_{j+1}}{n_j}\right)^{b_j} + d,
        \qquad n_j = \min(n, jN),\quad b_j = b\, 0.5^{j/\tau}

    computed as
    ``log(y - d) = log a + b [log min(n, N) + sum_j 0.5^(j/tau) log(clip(p, j, j+1) / j)]``
    with ``p = n / N``. Below one pass this is ``a n^b + d``.

    Args:
        params: :class:`FilteringParams` ``(a, b, tau, d)``; ``b < 0``.
        n: samples seen (compute), ``> 0``.
        N: unique samples in the pool, ``> 0``.
        form: ``"paper"`` (Eq. 3, default), ``"reference_code"`` (the authors' code:
            ``y = (a n_1^{b_0} + d) prod_j (n_{j+1}/n_j)^{b_j}``), or ``"effective_data"``
            (appendix variant: ``y = a n_eff^b + d``, ``n_eff = sum_k n_k^{new} 0.5^{k/tau}``).
        max_passes: static number of passes summed exactly (see ``DEFAULT_MAX_PASSES``).
        tau_size: if given, ``tau`` is the half-life of a pool of ``tau_size`` samples and a
            pool of ``N`` samples decays ``N / tau_size`` times slower (Goyal et al. App. G;
            ``LAWS.md`` section 3): the half-life used is ``tau N / tau_size``. For fitting
            one ``tau`` to pools of the same distribution and different sizes.

    Returns:
        The predicted error ``y``.

    Example:
        >>> from jaxlaws.laws import filtering, params_from_reference_code
        >>> p = params_from_reference_code(a=0.025, b=-0.16, tau=6.7272727272727275, d=0.1)
        >>> round(float(filtering(p, 19.2e6, 12.8e6, form="reference_code")), 10)
        0.8773121909

    References:
        Goyal et al., "Scaling Laws for Data Filtering", 2024, Eqs. 1-3 and App. C.
    """
    _check_form(form)
    n = jnp.asarray(n, jnp.float64)
    N = jnp.asarray(N, jnp.float64)
    a, b, tau, d = (jnp.asarray(x, jnp.float64) for x in params)
    if tau_size is not None:
        tau = tau * N / tau_size
    passes, tau_b = jnp.broadcast_arrays(n / N, tau)
    if form == "effective_data":
        n_eff = N * _decayed_passes(passes, tau_b, max_passes)
        return a * n_eff**b + d
    first = jnp.log(a) + b * (jnp.log(n) - jnp.log(jnp.maximum(passes, 1.0)))
    repeat = b * _decayed_log_passes(passes, tau_b, max_passes)
    if form == "paper":
        return jnp.exp(first + repeat) + d
    return (jnp.exp(first) + d) * jnp.exp(repeat)


def effective_tau(tau, sizes, weights, n):
    r"""Half-lives in a mixture: ``tau_hat_i = tau_i N_eff / N_i``.

    .. math:: N_{eff} = \Big(\sum_j \frac{w_j^2}{\min(N_j,\, w_j n)}\Big)^{-1}
              = \Big(\sum_j \max\big(\tfrac{w_j^2}{N_j}, \tfrac{w_j}{n}\big)\Big)^{-1}

    the inverse Simpson index of the sampling distribution over the samples drawn so far
    (the second form has no division by ``w_j``, so a zero weight is harmless).
    ``N_eff = p N`` for ``p`` equal pools mixed uniformly, ``N`` for one pool.
    """
    n = jnp.asarray(n, jnp.float64)[..., None]
    simpson = jnp.sum(jnp.maximum(weights**2 / sizes, weights / n), axis=-1, keepdims=True)
    return tau * (1.0 / simpson) / sizes


def filtering_mixture(
    params: FilteringMixtureParams | FilteringMixtureFreeParams,
    n,
    sizes,
    weights,
    *,
    form: str = "paper",
    max_passes: int = DEFAULT_MAX_PASSES,
):
    r"""Error after ``n`` samples from a mixture of pools with sampling weights ``w``.

    Pool ``i`` (``N_i`` unique samples, weight ``w_i``, ``sum w = 1``) has made
    ``p_i = w_i n / N_i`` passes, i.e. its pass boundaries are at ``n = j N_i / w_i``.
    With half-lives ``tau_hat_i`` from :func:`effective_tau`:

    .. math::
        \log(y - d) = \sum_i w_i \Big[\log a_i + b_i \Big(\log \min(n, N_i / w_i)
        + \sum_{j \ge 1} 0.5^{j / \hat\tau_i} \log \frac{\min(n, (j+1) N_i / w_i)}
        {\min(n, j N_i / w_i)}\Big)\Big]

    with ``log a_i = -b_i log n0`` (:class:`FilteringMixtureParams`) or free
    (:class:`FilteringMixtureFreeParams`). For ``p`` equal pools at ``w_i = 1/p`` this is
    Goyal et al.'s Theorem 1 (pass length ``pN``, ``tau_hat_i = p tau_i``, utility
    ``b_eff(k) = mean_i b_i 0.5^(k / tau_hat_i)``); for one pool it is :func:`filtering`.
    It is continuous in ``w`` (a pool at ``w_i -> 0`` contributes nothing) and
    differentiable except at pass boundaries. See ``LAWS.md`` section 3.

    Args:
        params: :class:`FilteringMixtureParams` ``(b, tau, n0, d)`` or
            :class:`FilteringMixtureFreeParams` ``(a, b, tau, d)``; per-pool fields have
            the pools on their last axis.
        n: samples seen, shape ``(...)``.
        sizes: unique samples per pool, shape ``(..., P)``.
        weights: sampling weights on the simplex, shape ``(..., P)``.
        form: ``"paper"`` (default) or ``"reference_code"`` (``d`` inside the product,
            as the authors' ``func_effective_utility_aggregation``).
        max_passes: static number of passes per pool summed exactly.

    Returns:
        The predicted error, shape ``(...)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxlaws.laws import filtering_mixture, FilteringMixtureParams
        >>> p = FilteringMixtureParams(b=jnp.array([-0.18, -0.15]), tau=jnp.array([4.36, 4.27]),
        ...                            n0=1e5 / 0.022, d=0.1)
        >>> y = filtering_mixture(p, 64e6, jnp.array([12.8e6, 12.8e6]), jnp.array([0.7, 0.3]))
        >>> bool(0.1 < y < 1.0)
        True

    References:
        Goyal et al. 2024, Theorem 1 and App. G; the continuous-weight generalisation is
        jaxlaws' (``LAWS.md`` section 3).
    """
    _check_form(form, ("paper", "reference_code"))
    n = jnp.asarray(n, jnp.float64)
    sizes = jnp.asarray(sizes, jnp.float64)
    weights = jnp.asarray(weights, jnp.float64)
    b = jnp.asarray(params.b, jnp.float64)
    d = jnp.asarray(params.d, jnp.float64)
    if isinstance(params, FilteringMixtureFreeParams):
        log_a = jnp.log(jnp.asarray(params.a, jnp.float64))
    else:
        log_a = -b * jnp.log(jnp.asarray(params.n0, jnp.float64))[..., None]
    tau_hat = effective_tau(jnp.asarray(params.tau, jnp.float64), sizes, weights, n)
    passes = weights * n[..., None] / sizes
    passes, tau_hat = jnp.broadcast_arrays(passes, tau_hat)
    first = jnp.sum(
        weights * (log_a + b * (jnp.log(n)[..., None] - jnp.log(jnp.maximum(passes, 1.0)))), axis=-1
    )
    repeat = jnp.sum(weights * b * _decayed_log_passes(passes, tau_hat, max_passes), axis=-1)
    if form == "paper":
        return jnp.exp(first + repeat) + d
    return (jnp.exp(first) + d) * jnp.exp(repeat)


#: Goyal et al. 2024, Fig. 4 (ImageNet, T-MARS pools top 10%, 10-20%, 20-30%, 30-40%): the
#: per-pool (b, tau), with the authors' shared anchor n0 = 1e5 / 0.022 and d = 0.1
#: (``LAWS.md`` section 3). Pools of 12.8M samples each.
GOYAL_FIG4 = FilteringMixtureParams(
    b=np.array([-0.18, -0.15, -0.12, -0.10]),
    tau=np.array([4.36, 4.27, 3.00, 1.55]),
    n0=np.float64(1e5 / 0.022),
    d=np.float64(0.1),
)


def _bind_max_passes(law: Law, passes) -> Law:
    """Bind the passes summed term by term (:func:`max_passes_for`) unless the user chose."""
    if "max_passes" in dict(law.options):
        return law
    return law.with_options(max_passes=max_passes_for(passes))


def _configure_single(law: Law, inputs) -> Law:
    return _bind_max_passes(law, jnp.asarray(inputs["samples"]) / jnp.asarray(inputs["pool_size"]))


def _configure_mixture(law: Law, inputs) -> Law:
    n = jnp.asarray(inputs["samples"])
    w, sizes = jnp.asarray(inputs["weights"]), jnp.asarray(inputs["sizes"])
    return _bind_max_passes(law, w * n[..., None] / sizes)


FILTERING = Law(
    name="filtering",
    fn=filtering,
    params=FilteringParams,
    inputs=("samples", "pool_size"),
    target="error",
    constraints=FilteringParams(a=C.positive, b=C.negative, tau=C.positive, d=C.positive),
    reference=REFERENCE,
    configure=_configure_single,
    # a coarse grid over the usual ranges (error in [0, 1], n in samples)
    start_grid=(
        (1.0, 10.0, 100.0, 1e3, 1e4),
        (-0.05, -0.1, -0.2, -0.4),
        (1.0, 3.0, 10.0, 30.0),
        (0.01, 0.1, 0.3),
    ),
)

FILTERING_MIXTURE = Law(
    name="filtering_mixture",
    fn=filtering_mixture,
    params=FilteringMixtureParams,
    inputs=("samples", "sizes", "weights"),
    target="error",
    constraints=FilteringMixtureParams(b=C.negative, tau=C.positive, n0=C.positive, d=C.positive),
    reference=REFERENCE,
    pool_params=("b", "tau"),
    configure=_configure_mixture,
    domains={"weights": "simplex"},
    passes=("weights", "samples", "sizes"),
    # every pool starts from the same b and tau; random starts draw them per pool
    start_grid=(
        (-0.05, -0.1, -0.2, -0.4),
        (1.0, 3.0, 10.0),
        (1e3, 1e4, 1e5, 1e6),
        (0.01, 0.1, 0.3),
    ),
)
