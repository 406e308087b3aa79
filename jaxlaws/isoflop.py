"""Approach 2 of Hoffmann et al.: isoFLOP profiles.

For each compute budget, fit a parabola to loss against ``log N`` over the runs of that
budget; its vertex is the budget's optimal size ``N*(C)``. Then fit the power law
``N*(C) = k C^a`` (and ``D*(C) = C / (6 N*)``, exponent ``1 - a``) by least squares in log
space. Each parabola is a weighted least-squares problem with a closed form, so bootstrap
resamples (points resampled within each budget) are per-point weights and the whole
bootstrap is one batched call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxlaws import domains as _domains
from jaxlaws.data import _as_float, _column_error

__all__ = ["isoflop", "IsoflopResult"]


def _parabola_vertex(x, y, w):
    """Weighted least-squares parabola ``y = c0 + c1 x + c2 x^2``; returns (x*, y*, c2)."""
    sw = jnp.sum(w)
    mx = jnp.sum(w * x) / sw
    u = x - mx  # centred for conditioning
    A = jnp.stack([jnp.ones_like(u), u, u * u], axis=-1)
    Aw = A * w[:, None]
    c = jnp.linalg.solve(Aw.T @ A, Aw.T @ y)
    xs = -c[1] / (2.0 * c[2])
    return mx + xs, c[0] + c[1] * xs + c[2] * xs * xs, c[2]


def _profile(logC, x, y, w, mask):
    """Vertices per budget and the power law through them. Shapes: budgets (G,), points (G, M)."""
    xs, ys, curv = jax.vmap(_parabola_vertex)(x, y, w * mask)
    ok = curv > 0
    wv = ok.astype(jnp.float64)
    mC = jnp.sum(wv * logC) / jnp.sum(wv)
    mX = jnp.sum(wv * xs) / jnp.sum(wv)
    slope = jnp.sum(wv * (logC - mC) * (xs - mX)) / jnp.sum(wv * (logC - mC) ** 2)
    return slope, mX - slope * mC, xs, ys, ok


@dataclasses.dataclass(frozen=True, repr=False)
class IsoflopResult:
    """The outcome of :func:`isoflop`.

    Attributes:
        budgets: one row per budget: ``C``, ``N_opt``, ``D_opt = C / 6 N_opt``,
            ``loss_opt`` (the parabola's minimum), ``n_points``, ``convex`` (a parabola
            opening upward; budgets that are not are left out of the power law).
        a: exponent of ``N*(C) ~ C^a``; ``1 - a`` is that of ``D*(C)``.
        k: coefficient, ``N*(C) = k C^a``.
        a_samples: bootstrap samples of ``a`` (empty without a bootstrap).
    """

    budgets: pd.DataFrame
    a: float
    k: float
    a_samples: np.ndarray

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Percentile interval of ``a`` over the bootstrap."""
        if self.a_samples.size == 0:
            raise ValueError("no bootstrap samples: call isoflop(..., n_bootstrap=...)")
        q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
        lo, hi = np.nanpercentile(self.a_samples, q)
        return float(lo), float(hi)

    def summary(self) -> str:
        s = f"N*(C) = {self.k:.4g} C^{self.a:.4f}, D*(C) ~ C^{1 - self.a:.4f}"
        s += f" over {len(self.budgets)} budgets"
        if self.a_samples.size:
            lo, hi = self.interval()
            s += f"; 95% interval of a ({lo:.4f}, {hi:.4f}) from {self.a_samples.size} resamples"
        return s

    def __repr__(self) -> str:
        return f"IsoflopResult({self.summary()})"


def isoflop(
    data: pd.DataFrame,
    *,
    compute: str = "C",
    N: str = "N",
    loss: str = "loss",
    n_bootstrap: int = 0,
    key=None,
    min_points: int = 3,
    window: float | None = 3.0,
) -> IsoflopResult:
    """Approach 2: per-budget parabolas in ``log N`` and the power law of their vertices.

    Args:
        data: runs with their compute budget, model size and loss.
        compute, N, loss: column names.
        n_bootstrap: resamples (points drawn with replacement within each budget), a
            whole number, ``0`` for none.
        key: ``jax.random`` key or whole-number seed for the bootstrap (default
            ``jax.random.key(0)``).
        min_points: budgets with fewer runs are dropped (at least 3: a parabola has three
            coefficients).
        window: fit each parabola to the runs within this factor in ``N`` of the budget's
            lowest-loss run (``None``: all runs). A parabola is a local model of the
            profile's minimum; far from it isoFLOP curves are asymmetric and pull the
            vertex away (measured on Porian et al.'s sweeps, ``tests/test_isoflop.py``).

    Returns:
        An :class:`IsoflopResult`.

    Raises:
        TypeError: ``data`` is not a table.
        ValueError: a bad argument; a missing column, or a value of ``compute``, ``N`` or
            ``loss`` that is not finite (``compute`` and ``N`` not positive), naming the
            column, the row and the value; fewer than 2 budgets with ``min_points`` runs or
            with a minimum; a power law that is not finite.

    References:
        Hoffmann et al. 2022, Section 3.2 (Approach 2); Porian et al. 2024, "Resolving
        Discrepancies in Compute-Optimal Scaling of Language Models".
    """
    from jaxlaws.uncertainty import _as_key

    if isinstance(data, Mapping):
        data = pd.DataFrame(dict(data))
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"isoflop: data must be a pandas DataFrame, got {type(data).__name__}")
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int | np.integer) or n_bootstrap < 0:
        raise ValueError(f"n_bootstrap must be a whole number >= 0 (0: no bootstrap), got {n_bootstrap!r}")
    if isinstance(min_points, bool) or not isinstance(min_points, int | np.integer) or min_points < 3:
        raise ValueError(
            f"min_points must be a whole number of at least 3 (a parabola has three coefficients), "
            f"got {min_points!r}"
        )
    if window is not None and (
        isinstance(window, bool) or not isinstance(window, int | float | np.number) or not window > 1
    ):
        raise ValueError(f"window must be a factor above 1 in N (or None: all runs), got {window!r}")
    if n_bootstrap:
        key = _as_key(0 if key is None else key)
    for col in (compute, N, loss):
        if col not in data.columns:
            raise _column_error(col, "isoflop", list(data.columns))
    index = list(data.index)
    for col, domain in ((compute, _domains.positive), (N, _domains.positive), (loss, _domains.real)):
        domain.validate(_as_float(data[col].to_numpy(), col, index), [col], index)
    groups = []
    for _, g in data.groupby(compute):
        if window is not None:
            best = np.log(float(g[N].iloc[int(np.argmin(g[loss].to_numpy(float)))]))
            g = g[np.abs(np.log(g[N].to_numpy(float)) - best) <= np.log(window) + 1e-12]
        if len(g) >= min_points:
            groups.append(g)
    if len(groups) < 2:
        raise ValueError(f"need at least 2 budgets with {min_points} or more runs, got {len(groups)}")
    G, M = len(groups), max(len(g) for g in groups)
    x = np.zeros((G, M))
    y = np.zeros((G, M))
    mask = np.zeros((G, M))
    for i, g in enumerate(groups):
        k = len(g)
        x[i, :k] = np.log(g[N].to_numpy(float))
        y[i, :k] = g[loss].to_numpy(float)
        x[i, k:] = x[i, 0]  # padding: weight 0
        y[i, k:] = y[i, 0]
        mask[i, :k] = 1.0
    logC = np.log(np.array([float(g[compute].iloc[0]) for g in groups]))
    a, b, xs, ys, ok = jax.jit(_profile)(logC, x, y, np.ones_like(mask), mask)
    xs, ok = np.asarray(xs), np.asarray(ok)
    if ok.sum() < 2:
        raise ValueError(
            f"only {int(ok.sum())} of {G} budgets have a parabola opening upward (a minimum in N): "
            "the power law needs at least 2 (more runs per budget, or a wider window)"
        )
    with np.errstate(over="ignore"):  # a vertex beyond any float N: reported below
        N_opt, a, k = np.exp(xs), float(a), float(np.exp(b))
    if not (np.isfinite(a) and np.isfinite(k)):
        far = ", ".join(f"{c:.3g}" for c, v, o in zip(np.exp(logC), N_opt, ok) if o and not np.isfinite(v))
        why = (
            f"the vertices of budgets C = {far} lie beyond any float N (log N* up to "
            f"{float(np.max(xs[ok])):.3g}): their profiles barely curve, the runs do not bracket a minimum"
            if far
            else "the vertices are degenerate"
        )
        raise ValueError(f"the power law N*(C) = k C^a is not finite (a={a:.4g}, k={k:.4g}): {why}")
    budgets = pd.DataFrame(
        {
            "C": np.exp(logC),
            "N_opt": N_opt,
            "D_opt": np.exp(logC) / (6.0 * N_opt),
            "loss_opt": np.asarray(ys),
            "n_points": mask.sum(axis=1).astype(int),
            "convex": ok,
        }
    )
    samples = np.zeros(0)
    if n_bootstrap:
        counts = mask.sum(axis=1).astype(int)

        def weights(k):
            u = jax.random.uniform(k, (G, M))
            idx = jnp.floor(u * counts[:, None].astype(np.float64)).astype(jnp.int32)  # within each budget
            w = jax.vmap(lambda row: jnp.bincount(row, length=M))(idx).astype(jnp.float64)
            return w * mask

        keys = jax.random.split(key, int(n_bootstrap))
        W = jax.vmap(weights)(keys)
        samples = np.asarray(jax.jit(jax.vmap(lambda w: _profile(logC, x, y, w, mask)[0]))(W))
    return IsoflopResult(budgets=budgets, a=a, k=k, a_samples=samples)
