"""The data-constrained law with repeated data (Muennighoff et al. 2023)."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp

from jaxlaws import _constraints as C
from jaxlaws.laws._law import Law, logsumexp_terms

__all__ = [
    "DataConstrainedParams",
    "data_constrained",
    "effective_data",
    "effective_params",
    "DATA_CONSTRAINED",
    "MUENNIGHOFF_C4",
]

REFERENCE = (
    "Muennighoff, Rush, Barak, Le Scao, Piktus, Tazi, Pyysalo, Wolf and Raffel, "
    "'Scaling Data-Constrained Language Models', NeurIPS 2023 (Eqs. 5-7)."
)


class DataConstrainedParams(NamedTuple):
    """Parameters of the data-constrained law (paper symbols).

    ``E, A, B, alpha, beta`` are the Chinchilla-form constants; ``R_D_star`` and
    ``R_N_star`` are the decay constants of repeated tokens and excess parameters.
    """

    E: jnp.ndarray
    A: jnp.ndarray
    B: jnp.ndarray
    alpha: jnp.ndarray
    beta: jnp.ndarray
    R_D_star: jnp.ndarray
    R_N_star: jnp.ndarray


def _f64(x):
    return jnp.asarray(x, dtype=jnp.float64)


def _saturating(U, R, R_star):
    """``U + U R* (1 - exp(-R / R*))`` written with ``-expm1``; finite gradients at R = 0."""
    # R* is positive by constraint; the guard keeps a zero R* (reachable from a user's
    # input, not from the fit) from producing 0/0 in the forward pass or the gradient.
    safe = R_star > 0
    R_star_safe = jnp.where(safe, R_star, 1.0)
    sat = jnp.where(safe, R_star_safe * -jnp.expm1(-R / R_star_safe), 0.0)
    return U + U * sat


def _repetitions(total, unique):
    """``max(total / unique - 1, 0)``: repetitions beyond the first pass."""
    return jnp.maximum(total / unique - 1.0, 0.0)


def _log_G(params):
    return (jnp.log(params.alpha) + jnp.log(params.A) - jnp.log(params.beta) - jnp.log(params.B)) / (
        params.alpha + params.beta
    )


def effective_data(params: DataConstrainedParams, D, U):
    r"""Effective data :math:`D' = U + U R^*_D (1 - e^{-R_D / R^*_D})`.

    ``R_D = max(D / U - 1, 0)`` repetitions beyond the first epoch. ``U`` is the unique
    tokens seen, ``U_D = min(U, D)``: with fewer tokens than the unique budget, ``D' = D``.
    """
    D, U = _f64(D), _f64(U)
    U = jnp.minimum(U, D)
    return _saturating(U, _repetitions(D, U), params.R_D_star)


def effective_params(params: DataConstrainedParams, N, U):
    r"""Effective parameters :math:`N' = U_N + U_N R^*_N (1 - e^{-R_N / R^*_N})`.

    ``U_N = min(N_opt(U), N)`` with ``N_opt(U) = G (U G)^{\beta/\alpha}`` the
    Chinchilla-optimal size for ``U`` tokens, and ``R_N = max(N / U_N - 1, 0)``.
    """
    N, U = _f64(N), _f64(U)
    log_G = _log_G(params)
    U_N = jnp.minimum(jnp.exp(log_G + params.beta / params.alpha * (jnp.log(U) + log_G)), N)
    return _saturating(U_N, _repetitions(N, U_N), params.R_N_star)


def data_constrained(params: DataConstrainedParams, N, D, U):
    r"""Loss under data constraints (repeated tokens, excess parameters).

    .. math::
        L = E + \frac{A}{N'^\alpha} + \frac{B}{D'^\beta},\quad
        D' = U + U R^*_D\,(1 - e^{-R_D/R^*_D}),\quad
        N' = U_N + U_N R^*_N\,(1 - e^{-R_N/R^*_N})

    with ``U`` the unique tokens seen (``min(U, D)``: a budget of unique tokens larger than
    ``D`` is not all seen), ``R_D = max(D/U - 1, 0)``, ``U_N = min(G (U G)^{beta/alpha}, N)``,
    ``R_N = max(N/U_N - 1, 0)`` and ``G = (alpha A / (beta B))^{1/(alpha+beta)}``.
    ``1 - exp(-x)`` is evaluated as ``-expm1(-x)`` so a large ``R*`` keeps full precision.
    Fitted in log space as ``log L = LSE(a - alpha log N', b - beta log D', e)``.

    Args:
        params: :class:`DataConstrainedParams`.
        N: parameters.
        D: training tokens (``D / U`` epochs).
        U: unique tokens.

    Returns:
        The predicted loss.

    Example:
        >>> from jaxlaws.laws import data_constrained, MUENNIGHOFF_C4
        >>> round(float(data_constrained(MUENNIGHOFF_C4, 6.34e9, 242e9, 25e9)), 6)
        2.225644

    References:
        Muennighoff et al., "Scaling Data-Constrained Language Models", 2023, Eqs. 5-7.
    """
    return jnp.exp(_log_data_constrained(params, N, D, U))


def _log_data_constrained(params: DataConstrainedParams, N, D, U):
    U = jnp.minimum(_f64(U), _f64(D))  # unique tokens seen, U_D
    Dp = effective_data(params, D, U)
    Np = effective_params(params, N, U)
    return logsumexp_terms(
        jnp.log(params.A) - params.alpha * jnp.log(Np),
        jnp.log(params.B) - params.beta * jnp.log(Dp),
        jnp.log(params.E),
    )


#: The published C4 constants at full precision (datablations code; paper Eq. 17 rounds them):
#: a 6.255414, b 7.3049974, e 0.6254804, alpha = beta 0.3526596, R*_D 15.387756, R*_N 5.309743.
MUENNIGHOFF_C4 = DataConstrainedParams(
    E=math.exp(0.6254804),
    A=math.exp(6.255414),
    B=math.exp(7.3049974),
    alpha=0.3526596,
    beta=0.3526596,
    R_D_star=15.387756,
    R_N_star=5.309743,
)

DATA_CONSTRAINED = Law(
    name="data_constrained",
    fn=data_constrained,
    params=DataConstrainedParams,
    inputs=("N", "D", "U"),
    target="loss",
    constraints=DataConstrainedParams(
        E=C.positive,
        A=C.positive,
        B=C.positive,
        alpha=C.positive,
        beta=C.positive,
        R_D_star=C.positive,
        R_N_star=C.positive,
    ),
    log_fn=_log_data_constrained,
    # The paper's stage-2 grid over R*_D, R*_N (zeros dropped: they give NaN); the other
    # constants are frozen at the stage-1 values in that stage.
    start_grid=(
        (math.exp(0.6254804),),
        (math.exp(6.255414),),
        (math.exp(7.3049974),),
        (0.3526596,),
        (0.3526596,),
        (4.0, 8.0, 12.0, 16.0, 20.0),
        (4.0, 8.0, 12.0, 16.0, 20.0),
    ),
    reference=REFERENCE,
)
