"""Objectives for fitting laws: residual losses, pure and differentiable.

All take residuals ``r`` (and optional per-point ``weights``, used by the bootstrap) and
return a scalar. They are summed, never averaged: a mean makes gradients ``n`` times
smaller than optimiser tolerances assume, which stopped Hoffmann et al.'s fit early
(Besiroglu et al. 2024).
"""

from __future__ import annotations

import jax.numpy as jnp

__all__ = ["huber", "huber_sum", "squared_sum", "r_squared"]


def huber(r, delta=1e-3):
    r"""Elementwise Huber loss.

    .. math:: H_\delta(r) = \begin{cases} r^2/2 & |r| \le \delta \\
              \delta(|r| - \delta/2) & |r| > \delta \end{cases}

    Equal to ``scipy.special.huber(delta, r)``; its gradient is finite everywhere.
    """
    r = jnp.asarray(r, jnp.float64)
    a = jnp.abs(r)
    return jnp.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def huber_sum(r, delta=1e-3, weights=None):
    """``sum_i w_i H_delta(r_i)`` (``w = 1`` by default)."""
    h = huber(r, delta)
    return jnp.sum(h if weights is None else weights * h)


def squared_sum(r, weights=None):
    """``sum_i w_i r_i^2``."""
    r = jnp.asarray(r, jnp.float64)
    return jnp.sum(r * r if weights is None else weights * r * r)


def r_squared(y, y_hat):
    """Coefficient of determination ``1 - SS_res / SS_tot`` of predictions ``y_hat``."""
    y = jnp.asarray(y, jnp.float64)
    ss_res = jnp.sum((y - y_hat) ** 2)
    ss_tot = jnp.sum((y - jnp.mean(y)) ** 2)
    return 1.0 - ss_res / ss_tot
