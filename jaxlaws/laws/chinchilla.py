"""The Chinchilla law (Hoffmann et al. 2022, Approach 3)."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp

from jaxlaws import _constraints as C
from jaxlaws.laws._law import Law, logsumexp_terms

__all__ = [
    "ChinchillaParams",
    "ChinchillaLogParams",
    "chinchilla",
    "chinchilla_log",
    "chinchilla_optimal",
    "CHINCHILLA",
    "HOFFMANN_GRID",
]

REFERENCE = (
    "Hoffmann, Borgeaud, Mensch et al., 'Training Compute-Optimal Large Language Models', "
    "NeurIPS 2022 (Approach 3); fitting protocol as in Besiroglu, Erdil, Barnett and You, "
    "'Chinchilla Scaling: A replication attempt', 2024."
)


class ChinchillaParams(NamedTuple):
    """Parameters of ``L = E + A / N^alpha + B / D^beta`` (paper symbols)."""

    E: jnp.ndarray
    A: jnp.ndarray
    B: jnp.ndarray
    alpha: jnp.ndarray
    beta: jnp.ndarray

    def to_log(self) -> ChinchillaLogParams:
        """Hoffmann's fitting coordinates ``(a, b, e) = log (A, B, E)``."""
        return ChinchillaLogParams(
            a=jnp.log(self.A),
            b=jnp.log(self.B),
            e=jnp.log(self.E),
            alpha=self.alpha,
            beta=self.beta,
        )


class ChinchillaLogParams(NamedTuple):
    """Log-sum-exp coordinates: ``a = log A``, ``b = log B``, ``e = log E``."""

    a: jnp.ndarray
    b: jnp.ndarray
    e: jnp.ndarray
    alpha: jnp.ndarray
    beta: jnp.ndarray

    def to_params(self) -> ChinchillaParams:
        """Back to ``(E, A, B, alpha, beta)``."""
        return ChinchillaParams(
            E=jnp.exp(self.e),
            A=jnp.exp(self.a),
            B=jnp.exp(self.b),
            alpha=self.alpha,
            beta=self.beta,
        )


def chinchilla(params: ChinchillaParams, N, D):
    r"""Chinchilla loss.

    .. math:: L(N, D) = E + \frac{A}{N^\alpha} + \frac{B}{D^\beta}

    Args:
        params: :class:`ChinchillaParams` ``(E, A, B, alpha, beta)``.
        N: parameters (model size).
        D: training tokens (``D = C / (6 N)`` for compute ``C``).

    Returns:
        The predicted loss, broadcast over ``N`` and ``D``.

    Example:
        >>> import jaxlaws
        >>> p = jaxlaws.laws.ChinchillaParams(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
        >>> round(float(jaxlaws.laws.chinchilla(p, 70e9, 1.4e12)), 4)
        1.9366

    References:
        Hoffmann et al., "Training Compute-Optimal Large Language Models", 2022, Eq. 2.
    """
    return jnp.exp(_log_chinchilla(params.to_log(), N, D))


def chinchilla_log(params: ChinchillaLogParams, N, D):
    r"""``log L`` in Hoffmann's log-sum-exp form, the form that is fitted.

    .. math:: \log \hat L = \mathrm{LSE}(a - \alpha \log N,\; b - \beta \log D,\; e)

    Args:
        params: :class:`ChinchillaLogParams` ``(a, b, e, alpha, beta)``.
        N: parameters.
        D: tokens.

    Returns:
        ``log L``; finite for any finite ``params`` and positive ``N``, ``D``.

    References:
        Hoffmann et al. 2022, Section D.2; Besiroglu et al. 2024.
    """
    return _log_chinchilla(params, N, D)


def _log_chinchilla(lp: ChinchillaLogParams, N, D):
    N = jnp.asarray(N, dtype=jnp.float64)
    D = jnp.asarray(D, dtype=jnp.float64)
    return logsumexp_terms(lp.a - lp.alpha * jnp.log(N), lp.b - lp.beta * jnp.log(D), lp.e)


def _log_chinchilla_params(params: ChinchillaParams, N, D):
    return _log_chinchilla(params.to_log(), N, D)


def chinchilla_optimal(params: ChinchillaParams, C):
    r"""Compute-optimal allocation under ``C = 6 N D`` (closed form).

    .. math::
        G = \left(\frac{\alpha A}{\beta B}\right)^{1/(\alpha+\beta)},\quad
        N_{opt} = G\,(C/6)^{\beta/(\alpha+\beta)},\quad
        D_{opt} = G^{-1}\,(C/6)^{\alpha/(\alpha+\beta)}

    Args:
        params: :class:`ChinchillaParams`.
        C: training compute in FLOPs.

    Returns:
        ``(N_opt, D_opt)``.

    References:
        Hoffmann et al. 2022, Eq. 4.
    """
    C = jnp.asarray(C, dtype=jnp.float64)
    s = params.alpha + params.beta
    log_G = (jnp.log(params.alpha) + jnp.log(params.A) - jnp.log(params.beta) - jnp.log(params.B)) / s
    log_c6 = jnp.log(C / 6.0)
    N_opt = jnp.exp(log_G + params.beta / s * log_c6)
    D_opt = jnp.exp(-log_G + params.alpha / s * log_c6)
    return N_opt, D_opt


#: Hoffmann's 4500-point start grid in fitting coordinates (a, b, e, alpha, beta):
#: alpha, beta in {0, .5, 1, 1.5, 2}; e in {-1, -.5, 0, .5, 1}; a, b in {0, 5, ..., 25}.
HOFFMANN_GRID = {
    "a": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    "b": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    "e": (-1.0, -0.5, 0.0, 0.5, 1.0),
    "alpha": (0.0, 0.5, 1.0, 1.5, 2.0),
    "beta": (0.0, 0.5, 1.0, 1.5, 2.0),
}

CHINCHILLA = Law(
    name="chinchilla",
    fn=chinchilla,
    params=ChinchillaParams,
    inputs=("N", "D"),
    target="loss",
    constraints=ChinchillaParams(E=C.positive, A=C.positive, B=C.positive, alpha=C.real, beta=C.real),
    log_fn=_log_chinchilla_params,
    # The unconstrained coordinates of E, A, B are log E, log A, log B: Hoffmann's e, a, b.
    start_grid=(
        tuple(math.exp(v) for v in HOFFMANN_GRID["e"]),
        tuple(math.exp(v) for v in HOFFMANN_GRID["a"]),
        tuple(math.exp(v) for v in HOFFMANN_GRID["b"]),
        HOFFMANN_GRID["alpha"],
        HOFFMANN_GRID["beta"],
    ),
    reference=REFERENCE,
)
