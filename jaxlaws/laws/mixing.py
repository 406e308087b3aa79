"""Data-mixture laws: predicted metrics as functions of a training mixture's proportions.

Each law takes the proportions ``r`` (or ``h``) of the data domains in the training mixture
as one input on the simplex (shape ``(n, k)``, zeros allowed unless said otherwise) and
predicts one or several metrics (validation losses per domain, shape ``(n, m)``). They are
fitted from swarm tables (:mod:`jaxlaws.swarm`) and minimised over the simplex by
:func:`jaxlaws.propose_mixture`.

- :data:`MIXING_EXP`: Ye et al. 2024's exp-linear law ``L_i = c_i + k_i exp(sum_j t_ij r_j)``
  in its identifiable form.
- :data:`BIMIX`: Ge et al. 2024's bivariate law in a domain's proportion and training steps.
- :data:`MIXTURE_ADDITIVE`: Shukor et al. 2025's additive law in model size, tokens and
  mixture.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from jaxlaws import _constraints as C
from jaxlaws.laws._law import Law

__all__ = [
    "MixingExpParams",
    "mixing_exp",
    "MIXING_EXP",
    "YE_PILE5",
    "BiMixParams",
    "bimix",
    "BIMIX",
    "MixtureAdditiveParams",
    "mixture_additive",
    "MIXTURE_ADDITIVE",
    "safe_power",
]


def safe_power(x, p):
    """``x ** p`` for ``x >= 0`` and ``p > 0``, with ``0 ** p = 0`` and finite derivatives
    in ``p`` at ``x = 0`` (``x ** p * log x`` is ``0 * -inf`` there otherwise)."""
    pos = x > 0
    xs = jnp.where(pos, x, 1.0)
    return jnp.where(pos, jnp.exp(p * jnp.log(xs)), 0.0)


# ----------------------------------------------------------------------------------------
# Ye et al. 2024: the exp-linear data-mixing law
# ----------------------------------------------------------------------------------------

YE_REFERENCE = (
    "Ye, Liu, Sun, Zhou, Zhan and Qiu, 'Data Mixing Laws: Optimizing Data Mixtures by "
    "Predicting Language Modeling Performance', ICLR 2025 (arXiv 2403.16952), Eq. 6."
)


class MixingExpParams(NamedTuple):
    """``L_i = c_i + exp(sum_j t_ij r_j)``: ``c`` per output ``(m,)``, ``t`` ``(m, k)``."""

    c: jnp.ndarray
    t: jnp.ndarray

    @classmethod
    def from_paper(cls, c, k, t) -> MixingExpParams:
        """From the paper's ``(c_i, k_i, t_ij)``: the proportions sum to one, so
        ``k_i exp(sum_j t_ij r_j) = exp(sum_j (t_ij + log k_i) r_j)``."""
        c, k, t = (jnp.asarray(v, jnp.float64) for v in (c, k, t))
        return cls(c=c, t=t + jnp.log(k)[:, None])


def mixing_exp(params: MixingExpParams, r):
    r"""Ye et al.'s data-mixing law, one loss per output:

    .. math::
        L_i(r) = c_i + k_i \exp\Big(\sum_j t_{ij} r_j\Big) = c_i + \exp\Big(\sum_j t'_{ij} r_j\Big),
        \quad t'_{ij} = t_{ij} + \log k_i .

    Since ``sum_j r_j = 1``, ``k_i`` and a shift of row ``i`` of ``t`` are one parameter:
    the law is fitted in the identifiable form ``(c, t')``
    (:meth:`MixingExpParams.from_paper` converts the paper's values).

    The authors fit each output separately by L-BFGS on the summed Huber loss of the raw
    losses with ``delta = 0.05`` (``objective="huber_linear", delta=0.05`` here) from the
    grid of :data:`MIXING_EXP`'s ``start_grid``; jaxlaws' default objective is Huber on log
    losses, as for the other laws.

    Args:
        params: :class:`MixingExpParams`.
        r: proportions, shape ``(n, k)`` (rows on the simplex).

    Returns:
        Predicted losses, shape ``(n, m)``.
    """
    return params.c + jnp.exp(r @ params.t.T)


MIXING_EXP = Law(
    name="mixing_exp",
    fn=mixing_exp,
    params=MixingExpParams,
    inputs=("r",),
    target="loss",
    domains={"r": "simplex"},
    shapes={"c": ("outputs",), "t": ("outputs", "r")},
    constraints=MixingExpParams(c=C.nonnegative.within(0.0, 5.0), t=C.real.within(-10.0, 5.0)),
    # Ye et al.'s grid (mix_5_domains.ipynb): log c in linspace(-2, 1.5, 10) x log k in
    # linspace(-10, 1, 20), every t_ij from U[0, 0.1) (here its mean 0.05), in the
    # identifiable form t' = t + log k; the authors' 30 random draws of t per grid point
    # only jitter t by 0.1 and are left out.
    start_grid=(
        tuple(float(v) for v in np.exp(np.linspace(-2.0, 1.5, 10))),
        tuple(float(v) + 0.05 for v in np.linspace(-10.0, 1.0, 20)),
    ),
    reference=YE_REFERENCE,
)

#: Ye et al.'s fit for 5 Pile domains (academic, prose, dialogue, symbolic, internet), from
#: their repository (yegcjs/mixinglaws @ c58d349, ``mix_5_domains.ipynb``, 70M models at step
#: 30000, printed to 4 decimals): per output domain ``log c``,
#: ``log k`` and ``t`` over the 5 training domains (each row's most negative ``t`` is its own
#: domain). The runs' data there carries no licence, so it is not bundled.
YE_PILE5 = {
    "domains": ("academic", "prose", "dialogue", "symbolic", "internet"),
    "log_c": (0.9750, 1.2624, 1.1375, 0.4750, 1.2402),
    "log_k": (-2.1391, -2.1656, -7.1017, -3.6546, -1.9510),
    "t": (
        (-10.0864, 2.7140, 2.7106, 2.6083, 1.5866),
        (1.3930, -4.6811, 0.7855, 1.8719, 0.5734),
        (6.7135, 6.2643, -31.8621, 6.6423, 6.2053),
        (3.3289, 3.6705, 3.1127, -16.4217, 3.1591),
        (1.1897, 0.8697, -0.5184, 1.7122, -3.0870),
    ),
}


# ----------------------------------------------------------------------------------------
# Ge et al. 2024: BiMix, in a domain's proportion and training steps
# ----------------------------------------------------------------------------------------

BIMIX_REFERENCE = (
    "Ge, Ma, Chen, Li and Ding, 'BiMix: A Bivariate Data Mixing Law for Language Model "
    "Pretraining', 2024 (arXiv 2405.14908), Eq. 3."
)


class BiMixParams(NamedTuple):
    """Per domain ``(k,)``: ``alpha``, ``B``, ``beta``, ``C`` (the paper's ``A_i`` absorbed)."""

    alpha: jnp.ndarray
    B: jnp.ndarray
    beta: jnp.ndarray
    C: jnp.ndarray

    @classmethod
    def from_paper(cls, A, alpha, B, beta, C) -> BiMixParams:
        """From the paper's five coefficients: ``A_i (B_i s^-b + C_i) = (A_i B_i) s^-b + A_i C_i``."""
        A, alpha, B, beta, C = (jnp.asarray(v, jnp.float64) for v in (A, alpha, B, beta, C))
        return cls(alpha=alpha, B=A * B, beta=beta, C=A * C)


def bimix(params: BiMixParams, r, s):
    r"""BiMix: domain ``i``'s validation loss after ``s`` steps with proportion ``r_i``,

    .. math::
        L_i(r_i, s) = \frac{A_i}{r_i^{\alpha_i}}\Big(\frac{B_i}{s^{\beta_i}} + C_i\Big)
        = r_i^{-\alpha_i}\Big(\frac{B'_i}{s^{\beta_i}} + C'_i\Big),

    with ``B' = A B`` and ``C' = A C``: the paper's ``A_i`` only scales ``B_i`` and ``C_i``,
    so it is absorbed (:meth:`BiMixParams.from_paper`). Output ``i`` is domain ``i``'s loss:
    a fit names one target column per domain, in the order of the proportions. Every
    proportion must be positive (``r_i = 0`` predicts an infinite loss).

    Args:
        params: :class:`BiMixParams`.
        r: proportions ``(n, k)``, positive.
        s: training steps ``(n,)``.

    Returns:
        Predicted losses ``(n, k)``.
    """
    return jnp.exp(-params.alpha * jnp.log(r)) * (params.B * s[:, None] ** (-params.beta) + params.C)


BIMIX = Law(
    name="bimix",
    fn=bimix,
    params=BiMixParams,
    inputs=("r", "s"),
    target="loss",
    domains={"r": "open_simplex"},
    shapes={"alpha": ("r",), "B": ("r",), "beta": ("r",), "C": ("r",)},
    constraints=BiMixParams(
        alpha=C.real.within(-1.0, 1.0),
        B=C.positive.within(0.1, 100.0),
        beta=C.positive.within(0.05, 1.0),
        C=C.positive.within(0.1, 10.0),
    ),
    reference=BIMIX_REFERENCE,
)


# ----------------------------------------------------------------------------------------
# Shukor et al. 2025: the additive law in model size, tokens and mixture
# ----------------------------------------------------------------------------------------

SHUKOR_REFERENCE = (
    "Shukor, Bethune, Busbridge, Grangier, Fini, El-Nouby and Ablin, 'Scaling Laws for "
    "Optimal Data Mixtures', 2025 (arXiv 2507.09404), the additive law."
)


class MixtureAdditiveParams(NamedTuple):
    """Per output ``(m,)``: ``E, A, alpha, B, beta``; per output and domain ``(m, k)``:
    ``C, gamma``."""

    E: jnp.ndarray
    A: jnp.ndarray
    alpha: jnp.ndarray
    B: jnp.ndarray
    beta: jnp.ndarray
    C: jnp.ndarray
    gamma: jnp.ndarray


def mixture_additive(params: MixtureAdditiveParams, N, D, h):
    r"""Shukor et al.'s additive law, one loss per target domain:

    .. math::
        L(N, D, h) = E + \frac{A}{N^{\alpha}} + \frac{B}{D^{\beta}}
        + \frac{1}{\sum_j C_j h_j^{\gamma_j}}

    Args:
        params: :class:`MixtureAdditiveParams`.
        N: parameters ``(n,)``; D: training tokens ``(n,)``; h: domain weights ``(n, k)``.

    Returns:
        Predicted losses ``(n, m)``.
    """
    N, D = N[:, None], D[:, None]
    mix = jnp.sum(params.C[None] * safe_power(h[:, None, :], params.gamma[None]), axis=-1)
    return params.E + params.A * N ** (-params.alpha) + params.B * D ** (-params.beta) + 1.0 / mix


MIXTURE_ADDITIVE = Law(
    name="mixture_additive",
    fn=mixture_additive,
    params=MixtureAdditiveParams,
    inputs=("N", "D", "h"),
    target="loss",
    domains={"h": "simplex"},
    shapes={
        "E": ("outputs",),
        "A": ("outputs",),
        "alpha": ("outputs",),
        "B": ("outputs",),
        "beta": ("outputs",),
        "C": ("outputs", "h"),
        "gamma": ("outputs", "h"),
    },
    constraints=MixtureAdditiveParams(
        E=C.nonnegative.within(0.0, 3.0),
        A=C.positive.within(1.0, 1e4),
        alpha=C.positive.within(0.05, 1.0),
        B=C.positive.within(1.0, 1e4),
        beta=C.positive.within(0.05, 1.0),
        C=C.positive.within(0.1, 10.0),
        gamma=C.positive.within(0.05, 1.0),
    ),
    reference=SHUKOR_REFERENCE,
)
