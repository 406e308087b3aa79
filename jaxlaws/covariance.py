"""How well a fit determines its parameters: the covariance of the law's free parameters
at the optimum (Gauss-Newton / Laplace approximation), flat directions, goodness of fit,
and optima of other basins that the data cannot tell from the best.

Everything is computed once, at the end of a fit, from one Jacobian at one point, in
float64. Let ``r_i = t(law(theta, x_i)) - t(y_i)`` be the residuals in the space the
objective measures them (``t = log`` for ``huber``, ``sse_log`` and ``huber_likelihood``,
the identity for ``huber_linear`` and ``sse``), ``W_i`` their weights (output weights,
taken as relative precisions; residuals of weight zero are left out, ``n`` counts the
rest), ``theta`` the ``p`` free parameters in the paper's parametrisation (frozen ones held
at their values, the objective's nuisance scale at its fitted value) and ``J = dr / dtheta``
the Jacobian, by forward-mode differentiation of the law itself with respect to the
paper's parameters (not the optimiser's coordinates). Then

.. math:: \\mathrm{Cov}(\\hat\\theta) = s^2 (J^T W J)^{+}

- **Least squares** (``sse``, ``sse_log``): ``s^2 = sum_i W_i r_i^2 / (n - p)``: the
  Gauss-Newton (Laplace) covariance, exactly what ``scipy.optimize.curve_fit`` reports
  (``absolute_sigma=False``, ``sigma = W^(-1/2)``). Here and below ``p`` counts the
  directions that are not flat (below): a redundant parameter takes no degree of freedom.
- **Huber** (``huber``, ``huber_linear``, and ``huber_likelihood``, whose loss in the law's
  parameters at its fitted scale ``sigma`` is Huber's with threshold ``c = delta sigma``;
  else ``c = delta``): Huber's asymptotic variance of his M-estimator at the Gaussian model
  (Huber 1964), with a robust scale: ``s^2 = sigma_r^2 e(k) n / (n - p)``, where
  ``sigma_r = 1.4826 median_i |W_i^(1/2) r_i|`` (the residuals' MAD about zero, the fit's
  centre), ``k = c mean(W)^(1/2) / sigma_r`` the threshold in units of that scale, and
  ``e(k) = E[psi_k(Z)^2] / P(|Z| <= k)^2`` for ``Z ~ N(0, 1)`` and ``psi_k = clip(., -k,
  k)``: the variance of Huber's loss relative to least squares', ``1`` for a large
  threshold and ``pi / 2`` (L1 regression's) for a small one. It is the Gauss-Newton
  curvature ``J^T W J`` scaled by a residual variance that outliers do not inflate. It does
  not count the residuals that fall within the threshold: at a Huber optimum with a small
  threshold about ``p`` residuals are pinned there by the fit itself, not by the noise, and
  a count (Huber 1981's ``H1`` covariance) then understates the variance by orders of
  magnitude (``huber_likelihood`` on Chinchilla: a threshold of ``5e-9``). It assumes
  residuals of one scale; where they are not (heteroscedastic or correlated residuals, as
  in points read off a figure) the bootstrap (:func:`jaxlaws.bootstrap`) is the better guide.

**Flat directions.** The curvature is normalised to unit diagonal
(``C = D^-1 J^T W J D^-1``, ``D = sqrt(diag(J^T W J))``: free of the parameters' units,
the same in the optimiser's coordinates) and decomposed, ``C = V diag(lambda) V^T`` (by the
singular values of ``W^(1/2) J D^-1``). A direction whose eigenvalue is below
:data:`FLAT_RTOL` times the largest is *flat*: the data do not determine it. The inverse
is the pseudo-inverse over the other directions; the parameters whose component in a flat
direction is at least :data:`FLAT_SHARE` are named for it, and their standard errors are
``inf`` (their covariances and correlations ``nan``); the others' are exact where the flat
directions are exactly flat. A law fitted output by output gets one block per output
(parameters of different outputs are uncorrelated).

**Goodness of fit**, in the fitted space (log residuals for log objectives):
``RMSE = sqrt(sum W r^2 / sum W)``; ``R^2 = 1 - RSS / TSS`` with ``RSS = sum W r^2`` and
``TSS = sum W (t(y) - mean_W t(y))^2`` (the mean taken per output); and from the Gaussian
likelihood of the residuals with its variance profiled out (constants dropped, as for
least squares): ``AIC = n log(RSS / sum W) + 2 k`` and ``BIC = n log(RSS / sum W) + k log n``
with ``k`` the free parameters of the law (not the nuisance scale).

**Other basins.** A point whose objective is higher than the best's by ``Delta f`` lies
``Delta chi^2 = 2 Delta f / (h s^2)`` from it in the covariance's metric, where ``h J^T W J``
is the objective's curvature (``h = 2`` for least squares, so ``Delta chi^2 = Delta RSS /
s^2``; ``h = P(|Z| <= k)``, the share of residuals expected within Huber's threshold, for
Huber's loss, over ``sigma^2`` for the likelihood's scaled residuals: Schrader and
Hettmansperger's robust likelihood ratio at the Gaussian model). A converged start with
``Delta chi^2 <= 1`` (:data:`EQUAL_FIT`) fits as well as the best as far as the residual
noise can tell: it lies inside every parameter's one-standard-error (68%) profile-likelihood
interval (Venzon and Moolgavkar 1988), so under the Gaussian approximation none of its
parameters would be more than one standard error from the best. Where one lies more than
:data:`BASIN_SE` standard errors away (more than :data:`BASIN_REL` of its value, for a
parameter in a flat direction), the approximation fails by that factor: the parameter is
poorly determined and its ``±`` does not show it. Converged starts are grouped into basins
by objective (as :func:`jaxlaws.fit.basins`) and the one of each basin that lies farthest
is named. The check runs only where the best start converged: beside a point that is not
a minimum, other optima say nothing.

References:
    Huber, "Robust estimation of a location parameter", Ann. Math. Statist. 1964; Huber,
    *Robust Statistics*, 1981 (section 7.6); Schrader and Hettmansperger, "Robust analysis
    of variance based upon a likelihood ratio criterion", Biometrika 1980; Venzon and
    Moolgavkar, "A method for computing profile-likelihood-based confidence intervals",
    Applied Statistics 1988.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxlaws.compilation import compiler_options

__all__ = [
    "Covariance",
    "covariance",
    "covariance_by_output",
    "basin_warning",
    "json_safe",
    "huber_efficiency",
    "FLAT_RTOL",
    "FLAT_SHARE",
    "EQUAL_FIT",
    "BASIN_SE",
    "BASIN_REL",
]

#: A direction of the normalised curvature whose eigenvalue is below this fraction of the
#: largest is flat (the threshold of the fit's "flat ridge" diagnostic, which normalises
#: the solver's curvature the same way).
FLAT_RTOL = 1e-9
#: A parameter whose component (of the unit eigenvector) in a flat direction is at least
#: this is named for it and has an infinite standard error.
FLAT_SHARE = 0.05
#: Another fit is as good as the best where its ``Delta chi^2`` is at most this (one
#: standard error's worth: inside every parameter's 68% profile-likelihood interval).
EQUAL_FIT = 1.0
#: Such a fit disagrees with the best where a parameter differs by more than this many
#: standard errors,
BASIN_SE = 2.0
#: or, for a parameter in a flat direction (infinite standard error), by more than this
#: fraction of its value.
BASIN_REL = 0.1


@dataclasses.dataclass(frozen=True, repr=False)
class Covariance:
    """The covariance of a fit's free parameters and its goodness of fit (module docstring).

    Attributes:
        labels: one label per free parameter entry (``b[0]``, ``b[1]`` for vector fields),
            paper parametrisation, in the law's order.
        blocks: ``(indices into labels, covariance)`` pairs: one for an ordinary fit, one
            per output for a law fitted output by output.
        stderr: standard error per label (``inf`` in a flat direction).
        flat: ``(labels, relative eigenvalue)`` per flat direction, labels by weight.
        space: ``"log"`` or ``"linear"``: where residuals are measured.
        n: residuals with positive weight; k: free parameters.
        rss, tss, sum_w: weighted residual and total sums of squares, sum of weights.
        chi2_scale: per block, ``Delta chi^2`` per unit of objective gap (``2 / (h s^2)``).
        method: how the covariance was scaled, in words.
    """

    labels: tuple[str, ...]
    blocks: tuple[tuple[np.ndarray, np.ndarray], ...]
    stderr: np.ndarray
    flat: tuple[tuple[tuple[str, ...], float], ...]
    space: str
    n: int
    k: int
    rss: float
    tss: float
    sum_w: float
    chi2_scale: tuple[float, ...]
    method: str

    @property
    def rmse(self) -> float:
        """Root mean square residual in the fitted space (weighted)."""
        return math.sqrt(self.rss / self.sum_w) if self.sum_w > 0 else math.nan

    @property
    def r2(self) -> float:
        """``1 - RSS / TSS`` in the fitted space."""
        return 1.0 - self.rss / self.tss if self.tss > 0 else math.nan

    @property
    def _loglik(self) -> float:
        with np.errstate(divide="ignore"):
            return float(self.n * np.log(self.rss / self.sum_w))

    @property
    def aic(self) -> float:
        """``n log(RSS / sum W) + 2 k``."""
        return self._loglik + 2.0 * self.k

    @property
    def bic(self) -> float:
        """``n log(RSS / sum W) + k log n``."""
        return self._loglik + self.k * math.log(self.n)

    def matrix(self) -> np.ndarray:
        """The covariance over :attr:`labels` (zero between blocks)."""
        P = len(self.labels)
        out = np.zeros((P, P))
        for idx, c in self.blocks:
            out[np.ix_(idx, idx)] = c
        return out

    def correlation_blocks(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(indices, correlation)`` per block (``nan`` for a parameter in a flat direction)."""
        return [(idx, _correlation(c)) for idx, c in self.blocks]

    def correlation_matrix(self) -> np.ndarray:
        P = len(self.labels)
        out = np.zeros((P, P))
        for idx, c in self.correlation_blocks():
            out[np.ix_(idx, idx)] = c
        return out

    def frame(self, matrix: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(matrix, index=list(self.labels), columns=list(self.labels))

    def record(self) -> dict:
        """JSON-safe (:func:`json_safe`): ``correlation`` as one ``{"labels", "matrix"}``
        per block (one per output for a law fitted output by output), ``flat_directions``
        as ``{"parameters", "relative_curvature"}``, and the goodness of fit."""
        return json_safe(
            {
                "correlation": [
                    {"labels": [self.labels[i] for i in idx], "matrix": c.tolist()}
                    for idx, c in self.correlation_blocks()
                ],
                "flat_directions": [
                    {"parameters": list(names), "relative_curvature": rel} for names, rel in self.flat
                ],
                "fit_space": self.space,
                "rmse": self.rmse,
                "r2": self.r2,
                "aic": self.aic,
                "bic": self.bic,
                "n_residuals": self.n,
                "stderr_method": self.method,
            }
        )


def json_safe(v):
    """``v`` with every float JSON can hold: ``inf`` and ``-inf`` as the strings ``"inf"``
    and ``"-inf"`` (``float("inf")`` reads them back), ``nan`` (undefined) as ``None``;
    NumPy numbers and arrays as Python's."""
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [json_safe(x) for x in v]
    if isinstance(v, np.ndarray):
        return json_safe(v.tolist())
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        v = float(v)
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    return v


def _correlation(c: np.ndarray) -> np.ndarray:
    d = np.sqrt(np.diag(c))
    ok = np.isfinite(d) & (d > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = c / np.outer(d, d)
    out[~ok, :] = np.nan
    out[:, ~ok] = np.nan
    np.fill_diagonal(out, np.where(ok | np.isinf(d), 1.0, np.nan))
    return out


# ----------------------------------------------------------------------------------------
# One Jacobian at the optimum
# ----------------------------------------------------------------------------------------


def _fields(layout, theta, frozen_values) -> tuple:
    """The law's fields from the free parameters in the paper's parametrisation."""
    out, i, k = [], 0, 0
    for shape, free in zip(layout.shapes, layout.free):
        if free:
            n = math.prod(shape)
            out.append(theta[i : i + n].reshape(shape))
            i += n
        else:
            out.append(frozen_values[k])
            k += 1
    return tuple(out)


@functools.lru_cache(maxsize=64)
def _linearise_fn(law, objective, layout, batched: bool, backend: str):
    """The jitted ``(theta, extra, inputs, y, frozen) -> (J, r, t(y), dz/dr)``: the
    residuals' Jacobian, the residuals, the transformed target and the objective's scaled
    residual ``z`` per unit of ``r``; ``batched`` maps it over a leading axis of ``theta``,
    ``extra`` and ``y`` (one table per output). Cached on what changes the program, so a
    second fit of a same-shaped table compiles nothing."""

    def one(theta, extra, inputs, y, frozen_values):
        y_t = jnp.log(y) if objective.space == "log" else y

        def res(th):
            params = law.params(*_fields(layout, th, frozen_values))
            pred = law.log_predict(params, *inputs) if objective.space == "log" else law(params, *inputs)
            r = jnp.ravel(pred - y_t)
            return r, r

        J, r = jax.jacfwd(res, has_aux=True)(theta)
        ex = tuple(extra[j] for j in range(len(layout.extra)))
        unit = objective.scale(jnp.ones((), r.dtype), ex)  # dz/dr: the scale is linear in r
        return J, r, jnp.ravel(y_t), unit

    fn = jax.vmap(one, in_axes=(0, 0, None, 0, None)) if batched else one
    options = compiler_options()
    if options is not None:
        # evaluated once: LLVM's optimisations would cost more than they save (CPU: 55 ms
        # to compile Chinchilla's Jacobian against 135 ms)
        options = {**options, "xla_backend_optimization_level": 0}
    return jax.jit(fn, compiler_options=options)


def paper_theta(layout, x) -> np.ndarray:
    """The free parameters in the paper's parametrisation from optimiser coordinates."""
    x = np.asarray(x, np.float64)
    parts = [np.ravel(np.asarray(c.forward(x[sl]), np.float64)) for _, _, c, sl in layout.free_fields()]
    return np.concatenate(parts) if parts else np.zeros(0)


def covariance(prob, x) -> Covariance:
    """The covariance (module docstring) of the problem ``prob``
    (:class:`~jaxlaws.problem.Problem`) at its optimum ``x`` (optimiser coordinates: free
    fields, then nuisance).

    Example:
        >>> import jaxlaws
        >>> from jaxlaws.problem import setup
        >>> df = jaxlaws.datasets.load("chinchilla-epoch", subset="standard")
        >>> init = dict(E=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37)
        >>> res = jaxlaws.fit("chinchilla", df, objective="sse_log", starts="init", init=init)
        >>> cov = covariance(setup("chinchilla", df, objective="sse_log"), res.x)
        >>> cov.labels, bool(cov.stderr[0] == res.stderr["E"]), f"{cov.rmse:.3g}"
        (('E', 'A', 'B', 'alpha', 'beta'), True, '0.00691')
    """
    layout = prob.layout
    inputs, y, _, out_w, frozen_values, _ = prob.args()
    x = np.asarray(x, np.float64)
    theta = paper_theta(layout, x)
    extra = x[layout.law_size :]
    fn = _linearise_fn(prob.law, prob.objective, layout, False, jax.default_backend())
    J, r, y_t, unit = (np.asarray(a, np.float64) for a in fn(theta, extra, inputs, y, frozen_values))
    ow = np.asarray(out_w, np.float64)
    k_out = len(ow)
    W = np.tile(ow, len(r) // k_out)  # residuals row by row, outputs within a row
    cov, se, flat, c2 = _block(J, r, W, float(unit), prob.objective, prob.delta, layout.labels)
    rss, tss, sw, n = _sums(r, y_t, W, k_out)
    return Covariance(
        labels=tuple(layout.labels[: layout.law_size]),
        blocks=((np.arange(len(theta)), cov),),
        stderr=se,
        flat=flat,
        space=prob.objective.space,
        n=n,
        k=len(theta),
        rss=rss,
        tss=tss,
        sum_w=sw,
        chi2_scale=(c2,),
        method=_method(prob.objective),
    )


def covariance_by_output(prob, sub, xs, output_weights) -> Covariance:
    """The covariance of a law fitted output by output: ``sub`` is the one-output problem,
    ``xs`` ``(outputs, P_sub)`` each output's optimum (optimiser coordinates), ``prob`` the
    whole problem (whose labels and full ``x`` order, field by field, are reported). Each
    output is its own block, scaled by its own residuals (unweighted: each output's fit is);
    the goodness of fit pools the residuals with the output weights, as the fit's objective."""
    layout = sub.layout
    inputs, _, _, _, frozen_values, _ = sub.args()
    xs = np.asarray(xs, np.float64)
    m = len(xs)
    theta = np.stack([paper_theta(layout, x) for x in xs])
    extra = xs[:, layout.law_size :]
    y = np.asarray(prob.data.y, np.float64).T[:, :, None]  # (outputs, rows, 1)
    fn = _linearise_fn(sub.law, sub.objective, layout, True, jax.default_backend())
    J, r, y_t, unit = (np.asarray(a, np.float64) for a in fn(theta, extra, inputs, y, frozen_values))
    index = layout.output_index(m)  # output k's entries of the whole x
    labels = tuple(prob.layout.labels[: prob.layout.law_size])
    se = np.zeros(len(labels))
    blocks, flat, c2s = [], [], []
    for k in range(m):
        sub_labels = [labels[i] for i in index[k]]
        cov, s, fl, c2 = _block(
            J[k], r[k], np.ones(r.shape[1]), float(unit[k]), sub.objective, sub.delta, sub_labels
        )
        blocks.append((index[k], cov))
        se[index[k]] = s
        flat += fl
        c2s.append(c2)
    ow = np.asarray(output_weights, np.float64)
    W = np.repeat(ow, r.shape[1])
    rss, tss, sw, n = _sums(r.ravel(), y_t.ravel(), W, 1, groups=m)
    return Covariance(
        labels=labels,
        blocks=tuple(blocks),
        stderr=se,
        flat=tuple(flat),
        space=prob.objective.space,
        n=n,
        k=len(labels),
        rss=rss,
        tss=tss,
        sum_w=sw,
        chi2_scale=tuple(c2s),
        method=_method(prob.objective),
    )


def _method(objective) -> str:
    if objective.name in ("sse", "sse_log"):
        return "Gauss-Newton, s^2 = RSS/(n-p)"
    return "Gauss-Newton, Huber's variance at a robust (MAD) scale"


def _sums(r, y_t, W, k_out, groups=None):
    """``(RSS, TSS, sum W, n)``; the total sum of squares about each output's mean
    (residuals ordered row by row with ``k_out`` outputs, or ``groups`` outputs one after
    the other)."""
    keep = W > 0
    if groups is not None:
        Y, Wm = y_t.reshape(groups, -1), W.reshape(groups, -1)
        axis = 1
    else:
        Y, Wm = y_t.reshape(-1, k_out), W.reshape(-1, k_out)
        axis = 0
    sw_k = Wm.sum(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(sw_k > 0, (Wm * Y).sum(axis=axis, keepdims=True) / sw_k, 0.0)
    tss = float(np.sum(Wm * (Y - mean) ** 2))
    return float(np.sum(W * r * r)), tss, float(np.sum(W)), int(keep.sum())


def huber_efficiency(k: float) -> float:
    """``e(k) = E[psi_k(Z)^2] / P(|Z| <= k)^2`` for ``Z ~ N(0, 1)``: the asymptotic
    variance of Huber's M-estimator with threshold ``k`` relative to least squares' at the
    Gaussian model (Huber 1964); ``1`` as ``k -> inf``, ``pi / 2`` as ``k -> 0``."""
    k = float(k)
    if not k > 1e-8:  # e(k) = pi / 2 (1 - 4 phi(0) k / 3) + O(k^2)
        return math.pi / 2.0 * (1.0 - 4.0 / 3.0 * max(k, 0.0) / math.sqrt(2.0 * math.pi))
    if k > 40.0:
        return 1.0
    phi = math.exp(-0.5 * k * k) / math.sqrt(2.0 * math.pi)
    tail = 0.5 * math.erfc(k / math.sqrt(2.0))  # P(Z > k)
    q = math.erf(k / math.sqrt(2.0))  # P(|Z| <= k)
    return (q - 2.0 * k * phi + 2.0 * k * k * tail) / (q * q)


def _block(J, r, W, unit, objective, delta, labels):
    """``(covariance, stderr, flat directions, Delta chi^2 per unit objective gap)`` of one
    block (module docstring): ``J`` the residuals' Jacobian, ``r`` the residuals, ``W`` their
    weights, ``unit`` the objective's scaled residual per unit of ``r``."""
    keep = W > 0
    J, r, W = J[keep], r[keep], W[keep]
    n, p = J.shape
    # the curvature normalised to unit diagonal, by the singular values of W^(1/2) J D^-1
    A = np.sqrt(W)[:, None] * J
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.sqrt(np.sum(A * A, axis=0))
    dead = ~np.isfinite(d) | (d == 0)  # a parameter the residuals do not depend on
    d = np.where(dead, 1.0, d)
    A = np.where(dead[None, :], 0.0, A / d)
    if p:
        _, S, Vt = np.linalg.svd(A, full_matrices=n < p)
    else:
        S, Vt = np.zeros(0), np.zeros((0, 0))
    lam = np.zeros(p)
    lam[: len(S)] = S * S
    top = lam.max() if p else 0.0
    rel = lam / top if top > 0 else np.zeros(p)
    flat = rel < FLAT_RTOL
    dof = n - int((~flat).sum())  # a flat direction takes no degree of freedom
    if objective.name in ("sse", "sse_log"):
        s2 = float(np.sum(W * r * r)) / dof if dof > 0 else math.inf
        h = 2.0  # f = sum W r^2: curvature 2 J^T W J
    else:
        c = delta / unit  # Huber's threshold on r
        sigma = 1.482602218505602 * float(np.median(np.sqrt(W) * np.abs(r))) if n else 0.0
        k = c * math.sqrt(float(np.mean(W))) / sigma if sigma > 0 else math.inf
        s2 = sigma * sigma * huber_efficiency(k) * n / dof if dof > 0 else math.inf
        q = 1.0 if math.isinf(k) else math.erf(k / math.sqrt(2.0))  # P(|Z| <= k)
        h = q * unit * unit
    chi2 = float(2.0 / (h * s2)) if h * s2 > 0 else math.inf
    inv = (Vt[~flat].T / lam[~flat]) @ Vt[~flat]
    with np.errstate(invalid="ignore"):
        cov = s2 * inv / np.outer(d, d)
    involved = np.zeros(p, bool)
    out_flat = []
    for i in np.flatnonzero(flat)[np.argsort(rel[flat], kind="stable")]:
        w = np.abs(Vt[i])
        names = [labels[j] for j in np.argsort(-w, kind="stable") if w[j] >= FLAT_SHARE]
        involved |= w >= FLAT_SHARE
        out_flat.append((tuple(names), float(rel[i])))
    cov[involved, :] = np.nan
    cov[:, involved] = np.nan
    cov[involved, involved] = np.inf
    with np.errstate(invalid="ignore"):
        se = np.sqrt(np.diag(cov))
    return cov, np.where(involved, np.inf, se), out_flat, chi2


# ----------------------------------------------------------------------------------------
# Other basins as good as the best
# ----------------------------------------------------------------------------------------


def basin_warning(
    labels,
    best,
    stderr,
    best_f: float,
    f,
    values,
    converged,
    chi2_scale: float,
    *,
    rtol: float,
    atol: float = 0.0,
    prefix: str = "",
    max_basins: int = 3,
    max_params: int = 3,
) -> str | None:
    """The warning for converged starts that fit as well as the best with other parameters
    (module docstring), or ``None``.

    The converged starts within the ``Delta chi^2`` gate are grouped into basins by
    objective as :func:`jaxlaws.fit.basins` groups them (a new basin where the objective is
    more than ``rtol`` relative plus ``atol`` above the current one's best), the best's own
    basin included: starts at the best's objective that ended elsewhere along a valley
    count as well. From each basin the start that disagrees most with the best is reported:
    a parameter disagrees when it differs by more than :data:`BASIN_SE` standard errors (by
    more than :data:`BASIN_REL` of its value where its standard error is infinite).

    Args:
        labels: parameter labels; best: the best's values (paper parametrisation);
            stderr: its standard errors.
        best_f: the best objective; f: every start's objective; values: every start's
            parameters ``(starts, labels)``, paper parametrisation; converged: which
            converged.
        chi2_scale: ``Delta chi^2`` per unit objective gap (:attr:`Covariance.chi2_scale`).
        rtol, atol: the fit's basin tolerances.
        prefix: put before the message (the output, for a law fitted output by output).
    """
    best = np.asarray(best, np.float64)
    stderr = np.asarray(stderr, np.float64)
    f = np.asarray(f, np.float64)
    values = np.asarray(values, np.float64).reshape(len(f), len(labels))
    limit = EQUAL_FIT
    gap = np.maximum(f - best_f, 0.0)
    with np.errstate(invalid="ignore", over="ignore"):
        dchi2 = np.where(gap > 0, gap * chi2_scale, 0.0)
    ok = np.asarray(converged, bool) & np.isfinite(f) & (dchi2 <= limit) & np.all(np.isfinite(values), axis=1)
    if not ok.any():
        return None
    diff = np.abs(values - best)
    rel = diff / np.maximum(np.maximum(np.abs(best), np.abs(values)), 1e-300)
    flat = np.isinf(stderr)
    with np.errstate(invalid="ignore", divide="ignore"):
        in_se = np.where(stderr > 0, diff / stderr, np.where(diff > 0, np.inf, 0.0))
    bad = np.where(flat, rel > BASIN_REL, in_se > BASIN_SE)
    # how far a start is from the best: its largest disagreement in standard errors (a flat
    # parameter's as if just past the threshold)
    score = np.where(bad, np.where(flat, BASIN_SE, in_se), 0.0).max(axis=1)
    idx = np.flatnonzero(ok)
    idx = idx[np.argsort(f[idx], kind="stable")]
    found, head, chosen = [], None, None
    for i in list(idx) + [None]:
        if i is None or head is None or f[i] - head > rtol * abs(head) + atol + 1e-300:
            if chosen is not None and bad[chosen].any():
                found.append(chosen)
            if i is None:
                break
            head, chosen = f[i], i
        elif score[i] > score[chosen]:
            chosen = i
    if not found:
        return None
    parts = []
    for i in found[:max_basins]:
        cols = np.flatnonzero(bad[i])
        cols = cols[np.argsort(-np.where(flat[cols], 0.0, in_se[i, cols]), kind="stable")]
        what = []
        for j in cols[:max_params]:
            se = "inf" if flat[j] else f"{stderr[j]:.2g}"
            far = "a flat direction" if flat[j] else f"{in_se[i, j]:.1f} standard errors"
            what.append(f"{labels[j]} = {values[i, j]:.6g} there against {best[j]:.6g} ± {se} ({far})")
        if len(cols) > max_params:
            what.append(f"{len(cols) - max_params} more")
        pct = 100.0 * gap[i] / abs(best_f) if best_f != 0 else math.inf
        parts.append(
            f"objective {f[i]:.6g} ({pct:.2g}% above the best, Delta chi^2 {dchi2[i]:.2g}): "
            + ", ".join(what)
        )
    more = f"; and {len(found) - max_basins} more" if len(found) > max_basins else ""
    n = len(found)
    return (
        f"{prefix}{n} other optim{'um' if n == 1 else 'a'} fit the data as well as the best (Delta chi^2 "
        f"at most {limit:g}: inside every parameter's one-standard-error profile interval) with "
        "other parameters: at " + "; at ".join(parts) + more + "; these parameters are poorly determined "
        "and their standard errors do not show how far equally good fits lie"
    )
