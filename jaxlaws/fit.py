"""Fitting a law to a table: batched multi-start fits.

``fit`` validates the table against the law (:func:`jaxlaws.problem.setup`), makes the
starts (:func:`jaxlaws.starts.make_starts`) and runs the multi-start
(:mod:`jaxlaws.multistart`): every start is screened with a few Levenberg-Marquardt steps,
then polished in rank order in rounds that widen until a stopping rule holds; where jaxlaws
draws the starts it draws more while Boender and Rinnooy Kan's rule expects optima not yet
seen. The result reports every start, the basins they reached, the rule's estimate, and
warnings about the optimum.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from jaxlaws import solvers
from jaxlaws.covariance import Covariance, basin_warning, covariance, covariance_by_output, paper_theta
from jaxlaws.data import fitted_input_columns, prepare
from jaxlaws.laws import Law
from jaxlaws.problem import MISSED, Layout, Problem, setup
from jaxlaws.sharding import local_devices
from jaxlaws.starts import draws_starts, make_starts

__all__ = ["fit", "FitResult", "ConvergenceWarning", "Layout", "make_starts", "setup", "basins"]

#: Default relative gap within which two starts reached the same basin.
BASIN_RTOL = 1e-6
#: How close (relative, in the optimiser's coordinate) a parameter must be to a bound to
#: be reported as sitting on it.
BOUND_RTOL = 1e-6


class ConvergenceWarning(UserWarning):
    """The best start did not converge, or the optimum is poorly determined."""


@dataclasses.dataclass(frozen=True, repr=False)
class FitResult:
    """The outcome of :func:`fit`.

    Attributes:
        law: the fitted :class:`~jaxlaws.laws.Law` (with any options the fit bound).
        params: best parameters, in the paper's parametrisation (the law's ``NamedTuple``).
        value: objective at ``params``.
        objective: objective name; ``delta`` its Huber threshold.
        extra: fitted nuisance parameters (``{"sigma": ...}`` for the Huber likelihood).
        status: status of the best start (``"converged"``, ``"max_steps"``, ...).
        starts: one row per start: ``objective``, ``steps``, ``status`` and the parameters
            it reached (paper parametrisation).
        basins: the distinct optima the polished starts reached, best first: ``objective``,
            ``starts`` (how many converged there) and the parameters of its best start.
        n_best_basin: converged starts whose objective is within ``basin_rtol`` of the best.
        n_polished: starts polished (the others were screened out).
        unseen: after Boender and Rinnooy Kan, the expected number of optima no polished
            start reached (``inf`` where too few converged to tell; the largest over the
            outputs of a law fitted output by output).
        missed: the expected number of those lower than the best (``unseen / (W + 1)``
            for ``W`` optima seen): the stopping rule's quantity where jaxlaws draws the
            starts.
        stopped_by_rule: whether the fit stopped because the rule held (else the starts,
            drawn up to ``max_starts``, or ``max_seconds`` ran out).
        frozen: names of the parameters held fixed.
        n_points: rows fitted.
        columns: the table columns used for each input and the target.
        diagnostics: warnings about the optimum (not converged, on a bound, flat ridge,
            other basins that fit as well with other parameters), also issued as
            :class:`ConvergenceWarning`.
        x: best point in optimiser coordinates (free fields, then nuisance).
        uncertainty: the :class:`~jaxlaws.covariance.Covariance` behind :attr:`stderr`,
            :attr:`covariance`, :attr:`correlation`, :attr:`flat_directions`, :attr:`rmse`,
            :attr:`r2`, :attr:`aic` and :attr:`bic` (``None`` for a result built without it).
    """

    law: Law
    params: NamedTuple
    value: float
    objective: str
    delta: float
    extra: dict
    status: str
    starts: pd.DataFrame
    basins: pd.DataFrame
    n_best_basin: int
    n_polished: int
    unseen: float
    missed: float
    stopped_by_rule: bool
    frozen: tuple[str, ...]
    n_points: int
    columns: dict
    diagnostics: tuple[str, ...]
    x: np.ndarray
    uncertainty: Covariance | None = None

    @property
    def converged(self) -> bool:
        return self.status == "converged"

    @property
    def stderr(self) -> dict[str, Any]:
        """Standard errors ``{name: float or list}`` in the paper's parametrisation
        (Gauss-Newton / Laplace, :mod:`jaxlaws.covariance`): ``inf`` for a parameter in a flat
        direction, ``0`` for a frozen one, ``nan`` without :attr:`uncertainty`."""
        se = self.uncertainty.stderr if self.uncertainty is not None else None
        out, i = {}, 0
        for name, value in self.params._asdict().items():
            shape = np.shape(value)
            if name in self.frozen:
                out[name] = _plain(np.zeros(shape))
                continue
            n = int(np.prod(shape))
            out[name] = _plain(np.full(shape, np.nan) if se is None else se[i : i + n].reshape(shape))
            i += n
        return out

    @property
    def covariance(self) -> pd.DataFrame:
        """Covariance of the free parameters (labels ``E``, ``b[0]``, ...; paper
        parametrisation); ``inf`` / ``nan`` for a parameter in a flat direction."""
        u = self._need_uncertainty()
        return u.frame(u.matrix())

    @property
    def correlation(self) -> pd.DataFrame:
        """Correlation of the free parameters (``nan`` for a parameter in a flat direction)."""
        u = self._need_uncertainty()
        return u.frame(u.correlation_matrix())

    @property
    def flat_directions(self) -> list[list[str]]:
        """The directions the data do not determine: for each, the parameters in it, by
        weight (their relative curvatures are in ``uncertainty.flat``)."""
        return [] if self.uncertainty is None else [list(names) for names, _ in self.uncertainty.flat]

    @property
    def rmse(self) -> float:
        """Root mean square residual in the fitted space (of ``log`` of the target for a log
        objective)."""
        return math.nan if self.uncertainty is None else self.uncertainty.rmse

    @property
    def r2(self) -> float:
        """``1 - RSS / TSS`` in the fitted space."""
        return math.nan if self.uncertainty is None else self.uncertainty.r2

    @property
    def aic(self) -> float:
        """``n log(RSS / n) + 2 k``: Gaussian residuals in the fitted space with their
        variance profiled out, ``k`` the law's free parameters (``RSS / sum W`` for
        ``RSS / n`` with output weights)."""
        return math.nan if self.uncertainty is None else self.uncertainty.aic

    @property
    def bic(self) -> float:
        """``n log(RSS / n) + k log n``."""
        return math.nan if self.uncertainty is None else self.uncertainty.bic

    def _need_uncertainty(self) -> Covariance:
        if self.uncertainty is None:
            raise ValueError("this FitResult was built without its covariance (uncertainty=None)")
        return self.uncertainty

    @property
    def params_dict(self) -> dict[str, Any]:
        """Best parameters as ``{name: float or list}``."""
        return {k: _plain(v) for k, v in self.params._asdict().items()}

    def predict(self, data: pd.DataFrame | Mapping[str, Any], columns: Mapping[str, Any] | None = None):
        """The fitted law's prediction for a table with the law's input columns."""
        if columns is None:
            columns = fitted_input_columns(self.law, self.columns, data)
        d = prepare(self.law, data, columns=columns, require_target=False)
        return np.asarray(self.law(self.params, *d.inputs))

    def summary(self) -> str:
        basins = f", {len(self.basins)} basins" if len(self.basins) > 1 else ""
        lines = [
            f"law {self.law.name}, objective {self.objective}"
            + (f" (delta {self.delta:g})" if "huber" in self.objective else "")
            + f", {self.n_points} points",
            f"objective value {self.value:.10e}, status {self.status}, "
            f"{self.n_best_basin} of {len(self.starts)} starts in the best basin "
            f"({self.n_polished} polished{basins}); {_rule_line(self)}",
        ]
        se = self.stderr if self.uncertainty is not None else {}
        for k, v in self.params_dict.items():
            if k in self.frozen:
                lines.append(f"  {k:>10} = {_fmt_value(v)} (frozen)")
            else:
                lines.append(f"  {k:>10} = {_fmt_value(v, se.get(k))}")
        for k, v in self.extra.items():
            lines.append(f"  {k:>10} = {_fmt(v)} (nuisance)")
        if self.uncertainty is not None:
            lines += _uncertainty_lines(self)
        lines += [f"  warning: {w}" for w in self.diagnostics]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"FitResult({self.summary()})"


def _rule_line(r: FitResult) -> str:
    if not np.isfinite(r.unseen):
        est = "too few converged starts to estimate the optima not yet seen"
    else:
        est = f"optima not yet seen {r.unseen:.2f} (lower than the best {r.missed:.3f})"
    if not r.stopped_by_rule:
        how = "stopped without the rule holding"
    elif np.isfinite(r.missed) and r.missed > MISSED:  # given starts: the plain rule
        how = "the rule for given starts held (the best confirmed, a wider round found nothing lower)"
    else:
        how = "the stopping rule held"
    return f"{est}, {how}"


def _plain(v):
    a = np.asarray(v)
    return float(a) if a.ndim == 0 else a.tolist()


def _fmt(v):
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return f"{v:.8g}"


def _fmt_se(v):
    if isinstance(v, list):
        return "[" + ", ".join(_fmt_se(x) for x in v) + "]"
    return "inf" if np.isinf(v) else f"{v:.3g}"


#: A parameter with more entries than this is summarised (shape, min / median / max), not
#: printed entry by entry.
SUMMARY_ENTRIES = 12


def _fmt_value(v, se=None) -> str:
    """``value ± stderr``; a parameter of many entries as its shape and the range of its
    values and standard errors."""
    a = np.asarray(v, np.float64)
    if a.size > SUMMARY_ENTRIES:
        out = f"shape {a.shape}: min {a.min():.4g}, median {np.median(a):.4g}, max {a.max():.4g}"
        if se is not None:
            s = np.asarray(se, np.float64)
            n_inf = int(np.isinf(s).sum())
            fin = s[np.isfinite(s)]
            if fin.size:
                out += f"; stderr min {fin.min():.3g}, median {np.median(fin):.3g}, max {fin.max():.3g}"
            if n_inf:
                out += f"; {n_inf} inf (flat)"
        return out
    return _fmt(v) if se is None else f"{_fmt(v)} ± {_fmt_se(se)}"


def _uncertainty_lines(r: FitResult) -> list[str]:
    u = r.uncertainty
    target = r.columns.get("target")
    if isinstance(target, list):
        target = target[0] if len(target) == 1 else f"{len(target)} targets"
    where = f"log {target}" if u.space == "log" else f"{target}"
    lines = [
        f"  fit: RMSE {u.rmse:.3g} ({where}), R^2 {u.r2:.4f}, AIC {u.aic:.1f}, BIC {u.bic:.1f} "
        f"({u.n} residuals, {u.k} free parameters)",
        f"  ± standard errors: {u.method}",
    ]
    shown = u.flat[:5]
    for names, rel in shown:
        listed = ", ".join(names[:6]) + (f", ... ({len(names)} in all)" if len(names) > 6 else "")
        lines.append(f"  flat direction (relative curvature {rel:.1e}, standard errors inf): {listed}")
    if len(u.flat) > len(shown):
        lines.append(f"  ... and {len(u.flat) - len(shown)} more flat directions")
    return lines


def fit(
    law: str | Law,
    data: pd.DataFrame | Mapping[str, Any],
    *,
    columns: Mapping[str, Any] | None = None,
    target: str | Sequence[str] | None = None,
    objective: str = "huber",
    delta: float = 1e-3,
    starts=None,
    seed: int = 0,
    init=None,
    frozen: Sequence[str] | Mapping[str, Any] | None = None,
    output_weights: Sequence[float] | None = None,
    polish: int | str | None = "adaptive",
    screen_steps: int | None = None,
    max_steps: int = 500,
    ftol: float = 1e-13,
    basin_rtol: float = BASIN_RTOL,
    max_starts: int | None = None,
    max_seconds: float | None = None,
    devices: int | None = None,
    progress: bool = False,
) -> FitResult:
    """Fit a law to a table from many starts at once.

    Every start is one Levenberg-Marquardt run on the reweighted Gauss-Newton curvature,
    with geodesic acceleration along curved valleys and exact Newton steps where the
    Gauss-Newton progress turns slow (except for ``huber_likelihood``); it ends when the
    undamped model predicts a relative decrease below ``ftol`` (converged), runs off
    towards an open end of a constraint (diverged), makes no progress (stalled) or reaches
    ``max_steps``. With the starts given,
    every start first takes ``screen_steps`` steps; starts are then polished to their end
    in rank order, in rounds of 8, 16, 32, ..., until the best objective is reached by two
    converged starts and a widening finds nothing lower. Where jaxlaws draws the starts
    (``starts`` an int, or the default for a law without a grid), every start is polished,
    and the fit stops once the best was reached by two converged starts and the expected
    number of optima lower than it that no start reached (Boender and Rinnooy Kan's model,
    :mod:`jaxlaws.multistart`) is at most 0.05, drawing as many again while it is not, up
    to ``max_starts`` (or ``max_seconds``). A start's path never depends on
    the others, so polishing more (``polish=None``) never ends higher. Bounds declared with
    the law's constraints are closed, so a parameter may sit at its limit. A law with several
    outputs whose every parameter has one row per output (``shapes`` starting with
    ``"outputs"``, as the mixture laws) is fitted output by output, every output's starts
    in the same compiled call: the objective is a sum of independent fits, and each output
    ranks and polishes its own starts.

    .. math::
        \\hat\\theta = \\arg\\min_\\theta \\sum_{i,k} w_k\\,
        \\rho(t(\\hat y_{\\theta,k}(x_i)) - t(y_{ik}))

    with ``t = log`` for log-space objectives and ``w_k`` the output weights.

    Args:
        law: a built-in law name (``"chinchilla"``, ...) or a :class:`~jaxlaws.laws.Law`
            (including your own).
        data: a DataFrame (or mapping of columns) with the law's inputs and target.
        columns: law input name -> column name where they differ; a list of columns or a
            glob (``"p_*"``) makes a vector input such as mixture proportions.
        target: the column to fit (default: the law's target); a list of columns or a glob
            for a law with several outputs (a prediction of shape ``(n, k)``).
        objective: ``"huber"`` (default: summed Huber on log residuals, as Hoffmann,
            Muennighoff and Epoch), ``"huber_linear"``, ``"sse"`` (linear, as Goyal),
            ``"sse_log"``, or ``"huber_likelihood"`` (Epoch's, with a free scale). Use a
            linear objective for targets that may be zero or negative.
        delta: Huber threshold.
        starts: ``None`` (default: the law's published grid, else 64 random starts drawn
            from the ranges declared with its constraints, and more while the stopping rule
            asks), ``"grid"``, ``"init"``, an int (that many random starts from ``seed`` to
            begin with), a mapping of per-parameter values (a grid), a DataFrame (one start
            per row) or an array of optimiser coordinates. See
            :func:`jaxlaws.starts.make_starts`.
        seed: seed of random starts.
        init: parameters (mapping or the law's NamedTuple) for ``starts="init"``, for
            frozen fields and for fields a grid leaves out.
        frozen: names of parameters held at their ``init`` values, or a mapping of values.
        output_weights: one weight per target column (default: all 1).
        polish: ``"adaptive"`` (default), an int (polish exactly that many of the best
            screened starts) or ``None`` (polish every start).
        screen_steps: Gauss-Newton steps every start takes before ranking (default: 20
            for up to 128 starts, fewer for more, 3 for the 4500-start grid:
            :func:`jaxlaws.problem.auto_screen_steps`).
        max_steps: bound on a start's polishing steps.
        ftol: relative objective decrease that counts as converged.
        basin_rtol: relative objective gap within which starts reached the same basin.
        max_starts: most random starts drawn in all (default 1024, or ``starts`` if more).
        max_seconds: no round is widened and nothing more is drawn after this long.
        devices: accepted for symmetry with :func:`jaxlaws.bootstrap`; the starts of one
            fit run on one device.
        progress: a progress bar over the outputs of a law fitted output by output (shown
            where stderr is a terminal), as the command line does.

    Returns:
        A :class:`FitResult`.

    Raises:
        ValueError: bad input (named column, row and value), unknown law or objective,
            fewer observations than free parameters, a law JAX cannot trace, or no start
            with a finite objective.

    Warns:
        ConvergenceWarning: the best start did not converge, sits at a bound, or lies on a
            flat ridge; or converged starts fit as well as the best (``Delta chi^2 <= 1``)
            with a parameter more than 2 standard errors away
            (:func:`jaxlaws.covariance.basin_warning`).

    Example:
        >>> import jaxlaws
        >>> df = jaxlaws.datasets.load("chinchilla-epoch", subset="standard")
        >>> res = jaxlaws.fit("chinchilla", df)
        >>> f"{res.value:.8e}"
        '1.01827402e-03'

    References:
        Hoffmann et al. 2022 (App. D.2); Besiroglu et al. 2024.
    """
    local_devices(devices)  # a bad count is an error here as in bootstrap
    _check_budget(max_starts, max_seconds)
    prob = setup(
        law,
        data,
        columns=columns,
        target=target,
        objective=objective,
        delta=delta,
        init=init,
        frozen=frozen,
        output_weights=output_weights,
    )
    if _separable(prob):
        return _fit_separable(
            prob,
            data,
            columns=columns,
            starts=starts,
            seed=seed,
            ftol=ftol,
            polish=polish,
            screen_steps=screen_steps,
            max_steps=max_steps,
            basin_rtol=basin_rtol,
            max_starts=max_starts,
            max_seconds=max_seconds,
            progress=progress,
        )
    x0s = make_starts(prob.law, prob.layout, starts, seed=seed, init=prob.init)
    sol = prob.solve(
        x0s,
        ftol=ftol,
        polish=polish,
        screen_steps=screen_steps,
        max_steps=max_steps,
        basin_rtol=basin_rtol,
        max_starts=max_starts,
        max_seconds=max_seconds,
        draw=_drawer(prob, starts, seed, polish),
    )
    return _result(prob, sol, basin_rtol)


def _check_budget(max_starts, max_seconds):
    if max_starts is not None and (
        isinstance(max_starts, bool) or not isinstance(max_starts, int | np.integer) or max_starts < 1
    ):
        raise ValueError(f"max_starts must be a whole number >= 1, got {max_starts!r}")
    if max_seconds is not None and (
        isinstance(max_seconds, bool) or not isinstance(max_seconds, int | float) or not max_seconds > 0
    ):
        raise ValueError(f"max_seconds must be a positive number of seconds, got {max_seconds!r}")


def _drawer(prob: Problem, starts, seed, polish):
    """``(n, k) -> starts``: the ``k``-th batch of ``n`` more random starts, where jaxlaws
    draws the starts and polishes adaptively (else ``None``: the starts given or drawn at
    first are all there is)."""
    if not draws_starts(prob.law, starts) or polish != "adaptive":
        return None
    return lambda n, k: make_starts(prob.law, prob.layout, int(n), seed=seed, init=prob.init, stream=k)


def _result(prob: Problem, sol: solvers.TableSolution, basin_rtol: float) -> FitResult:
    f = np.asarray(sol.f[0])
    status_codes = np.asarray(sol.status[0])
    finite = np.isfinite(f)
    if not finite.any():
        raise ValueError(
            f"no start gave a finite objective for law {prob.law.name!r}: check the data's "
            "scale, the objective (log objectives need a positive target) and the starts"
        )
    best = int(np.argmin(np.where(finite, f, np.inf)))
    x = np.asarray(sol.x[0, best])
    fields, extra = prob.layout.unpack(x, tuple(np.asarray(v) for v in prob.frozen_values))
    params = prob.law.params(*(np.asarray(v) for v in fields))
    status = solvers.STATUS_NAMES[int(status_codes[best])]
    converged = status_codes == solvers.CONVERGED
    atol = float(sol.floor[0])
    in_basin = converged & (np.abs(f - f[best]) <= basin_rtol * abs(f[best]) + atol + 1e-300)
    starts = _starts_table(prob.layout, sol.x[0], f, sol.steps[0], status_codes)
    extra_out = {}
    for name, v in zip(prob.layout.extra, extra):
        extra_out["sigma" if name == "log_sigma" else name] = float(np.exp(v) if name == "log_sigma" else v)
    diagnostics = _diagnose(prob, x, status, np.asarray(sol.H[0, best]) if len(sol.H) else None)
    unc = covariance(prob, x)
    if status == "converged":  # beside a best that is not a minimum, other optima say nothing
        msg = basin_warning(
            unc.labels,
            paper_theta(prob.layout, x),
            unc.stderr,
            float(f[best]),
            f,
            starts[list(unc.labels)].to_numpy(np.float64),
            converged,
            unc.chi2_scale[0],
            rtol=basin_rtol,
            atol=atol,
        )
        diagnostics += (msg,) if msg else ()
    for msg in diagnostics:
        warnings.warn(msg, ConvergenceWarning, stacklevel=3)
    return FitResult(
        law=prob.law,
        params=params,
        value=float(f[best]),
        objective=prob.objective.name,
        delta=prob.delta,
        extra=extra_out,
        status=status,
        starts=starts,
        basins=basins(starts, basin_rtol, atol),
        n_best_basin=int(in_basin.sum()),
        n_polished=int(sol.polished[0]),
        unseen=float(sol.unseen[0]),
        missed=float(sol.missed[0]),
        stopped_by_rule=bool(sol.stopped_by_rule[0]),
        frozen=tuple(n for n, fr in zip(prob.layout.names, prob.layout.free) if not fr),
        n_points=len(prob.data),
        columns=dict(prob.data.columns),
        diagnostics=diagnostics,
        x=x,
        uncertainty=unc,
    )


def _separable(prob: Problem) -> bool:
    """Whether the fit splits into one independent fit per output: a law whose every
    parameter has one row per output (declared ``shapes`` starting with ``"outputs"``, as
    the mixture laws), several outputs, nothing frozen or given as ``init``, and no
    nuisance parameter shared by the outputs."""
    shapes = dict(prob.law.shapes)
    return (
        prob.data.n_outputs > 1
        and not prob.objective.extra
        and prob.init is None
        and all(prob.layout.free)
        and all(shapes.get(n, ())[:1] == ("outputs",) for n in prob.law.param_names)
    )


def _fit_separable(
    prob: Problem,
    data,
    *,
    columns,
    starts,
    seed,
    ftol,
    polish,
    screen_steps,
    max_steps,
    basin_rtol,
    max_starts,
    max_seconds,
    progress=False,
):
    """One fit per output, all in one compiled call (one table per output column): each
    output ranks and polishes its own starts, so an output is not held back by a start that
    is good for the others; the result is assembled as one fit."""
    tcols = list(prob.data.columns["target"])
    sub = setup(
        prob.law, data, columns=columns, target=[tcols[0]], objective=prob.objective.name, delta=prob.delta
    )
    m = len(tcols)
    if isinstance(starts, np.ndarray) and starts.ndim == 2 and starts.shape[1] == prob.layout.law_size:
        # starts of the whole law: each output's rows of every field are its own starts
        x0s = np.asarray(starts, np.float64)[:, sub.layout.output_index(m)].transpose(1, 0, 2)
    else:
        x0s = make_starts(sub.law, sub.layout, starts, seed=seed, init=None)
    y = np.asarray(prob.data.y, np.float64).T[:, :, None]  # (outputs, rows, 1)
    bar = None
    if progress and m > 1:
        from tqdm.auto import tqdm

        bar = tqdm(total=m, desc=f"fitting {prob.law.name}", unit="output", disable=None, leave=False)
    try:
        sol = sub.solve(
            x0s,
            tables={"y": y},
            ftol=ftol,
            polish=polish,
            screen_steps=screen_steps,
            max_steps=max_steps,
            basin_rtol=basin_rtol,
            max_starts=max_starts,
            max_seconds=max_seconds,
            draw=_drawer(sub, starts, seed, polish),
            devices=1,
            progress=None if bar is None else (lambda done: bar.update(done - bar.n)),
        )
    finally:
        if bar is not None:
            bar.close()
    f = np.asarray(sol.f)  # (outputs, starts)
    if not np.isfinite(f).any(axis=1).all():
        k = int(np.argmin(np.isfinite(f).any(axis=1)))
        raise ValueError(
            f"no start gave a finite objective for output {tcols[k]!r} of law {prob.law.name!r}: check the "
            "data's scale, the objective (log objectives need a positive target) and the starts"
        )
    fo = np.where(np.isfinite(f), f, np.inf)
    best = np.argmin(fo, axis=1)
    codes = np.asarray(sol.status)
    ow = np.asarray(prob.output_weights, np.float64)

    index = sub.layout.output_index(m)

    def combine(xs):  # per-output optimiser coordinates (outputs, P_sub) -> the full x
        full = np.empty(index.size)
        full[index] = xs
        return full

    xs = np.asarray(sol.x)  # (outputs, starts, P_sub)
    x = combine(xs[np.arange(m), best])
    fields, _ = prob.layout.unpack(x, ())
    params = prob.law.params(*(np.asarray(v) for v in fields))
    status_best = codes[np.arange(m), best]
    bad = np.flatnonzero(status_best != solvers.CONVERGED)
    status = solvers.STATUS_NAMES[int(status_best[bad[0]])] if bad.size else "converged"
    # the starts: start s's parameters on every output, its joint objective, its worst status
    joint_f = (ow[:, None] * f).sum(axis=0)
    joint_x = np.stack([combine(xs[:, s]) for s in range(xs.shape[1])])
    worst = np.where((codes != solvers.CONVERGED).any(axis=0), codes.max(axis=0), solvers.CONVERGED)
    table = _starts_table(prob.layout, joint_x, joint_f, np.asarray(sol.steps).max(axis=0), worst)
    conv = codes == solvers.CONVERGED
    fb = fo[np.arange(m), best][:, None]
    atol = np.asarray(sol.floor)[:, None]
    in_basin = conv & (np.abs(f - fb) <= basin_rtol * np.abs(fb) + atol + 1e-300)
    value = float((ow * fo[np.arange(m), best]).sum())
    n_best = int(in_basin.sum(axis=1).min())
    diagnostics = []
    for k in range(m):
        H = np.asarray(sol.H[k, best[k]]) if len(sol.H) else None
        for msg in _diagnose(sub, xs[k, best[k]], solvers.STATUS_NAMES[int(status_best[k])], H):
            diagnostics.append(f"output {tcols[k]!r}: {msg}")
    unc = covariance_by_output(prob, sub, xs[np.arange(m), best], ow)
    diagnostics += _separable_basin_warnings(
        sub, unc, xs, f, conv, best, tcols, basin_rtol, np.asarray(sol.floor)
    )
    for msg in diagnostics:
        warnings.warn(msg, ConvergenceWarning, stacklevel=3)
    return FitResult(
        law=prob.law,
        params=params,
        value=value,
        objective=prob.objective.name,
        delta=prob.delta,
        extra={},
        status=status,
        starts=table,
        basins=_with_best(
            basins(table, basin_rtol, float(np.sum(sol.floor))), prob.layout, x, value, status, n_best
        ),
        n_best_basin=n_best,
        n_polished=int(np.asarray(sol.polished).max()),
        unseen=float(np.max(sol.unseen)),
        missed=float(np.max(sol.missed)),
        stopped_by_rule=bool(np.all(sol.stopped_by_rule)),
        frozen=(),
        n_points=len(prob.data),
        columns=dict(prob.data.columns),
        diagnostics=tuple(diagnostics),
        x=x,
        uncertainty=unc,
    )


#: Outputs whose other-basin warnings are spelt out one by one; more are summarised in one.
SHOWN_OUTPUTS = 3


def _separable_basin_warnings(sub, unc, xs, f, conv, best, tcols, rtol, floors) -> list[str]:
    """Each output's converged starts that fit as well as its best with other parameters
    (:func:`jaxlaws.covariance.basin_warning`, on its own block)."""
    found = []
    for k in range(len(xs)):
        if not conv[k, best[k]]:
            continue  # the output's best is not a minimum: it says so already
        idx, _ = unc.blocks[k]
        values = np.concatenate(
            [np.asarray(c.forward(xs[k][:, sl]), np.float64) for _, _, c, sl in sub.layout.free_fields()],
            axis=1,
        )
        msg = basin_warning(
            [unc.labels[i] for i in idx],
            paper_theta(sub.layout, xs[k, best[k]]),
            unc.stderr[idx],
            float(f[k, best[k]]),
            f[k],
            values,
            conv[k],
            unc.chi2_scale[k],
            rtol=rtol,
            atol=float(floors[k]),
            prefix=f"output {tcols[k]!r}: ",
        )
        if msg:
            found.append((tcols[k], msg))
    if len(found) <= SHOWN_OUTPUTS:
        return [msg for _, msg in found]
    names = ", ".join(repr(t) for t, _ in found[:10]) + (", ..." if len(found) > 10 else "")
    return [
        f"{len(found)} outputs ({names}) have other optima that fit as well as their best with other "
        f"parameters; the first: {found[0][1]}"
    ]


def _with_best(table: pd.DataFrame, layout: Layout, x, value, status, n_best) -> pd.DataFrame:
    """The basins of a fit output by output, headed by the returned best: each output's best
    start, which need not be one start of the whole law."""
    if len(table) and table.objective.iloc[0] <= value:
        return table
    one = _starts_table(layout, np.asarray(x)[None], [value], [0], [solvers.CONVERGED])
    params = {c: one[c].iloc[0] for c in one.columns if c not in ("objective", "steps", "status")}
    row = {"objective": value, "starts": n_best, "converged": n_best, "status": status, **params}
    return pd.concat([pd.DataFrame([row], columns=table.columns), table], ignore_index=True)


def _starts_table(layout: Layout, xs, f, steps, status) -> pd.DataFrame:
    table = {
        "objective": np.asarray(f),
        "steps": np.asarray(steps),
        "status": np.array(solvers.STATUS_NAMES)[np.asarray(status)],
    }
    xs = np.asarray(xs)
    for name, shape, c, sl in layout.free_fields():
        vals = np.asarray(c.forward(xs[:, sl]))
        if shape == ():
            table[name] = vals[:, 0]
        else:
            for j in range(vals.shape[1]):
                table[f"{name}[{j}]"] = vals[:, j]
    return pd.DataFrame(table)


#: Statuses of a start that was polished to its end.
_POLISHED = ("converged", "max_steps", "stalled", "diverged")


def basins(starts: pd.DataFrame, rtol: float = BASIN_RTOL, atol: float = 0.0) -> pd.DataFrame:
    """The distinct optima reached by polished starts, best first.

    Polished starts with a finite objective are sorted by objective; a start opens a new
    basin when its objective is more than ``rtol`` (relative) above the best of the current
    one (plus ``atol``: the objective's rounding floor, below which an exact fit's values
    differ only by rounding). The returned best is always in the first row, whatever its
    status.

    Returns:
        One row per basin: ``objective`` (its best), ``starts`` (how many polished starts
        reached it), ``converged`` (how many of them converged), ``status`` (its best
        start's) and the parameters of its best start.
    """
    done = starts[starts["status"].isin(_POLISHED) & np.isfinite(starts["objective"])]
    done = done.sort_values("objective", kind="stable")
    params = [c for c in starts.columns if c not in ("objective", "steps", "status")]
    rows, best, first = [], None, None
    count = conv = 0

    def close():
        rows.append(
            {
                "objective": best,
                "starts": count,
                "converged": conv,
                "status": first["status"],
                **{p: first[p] for p in params},
            }
        )

    for _, row in done.iterrows():
        f = float(row["objective"])
        if best is None or f - best > rtol * abs(best) + atol + 1e-300:
            if best is not None:
                close()
            best, first, count, conv = f, row, 0, 0
        count += 1
        conv += row["status"] == "converged"
    if best is not None:
        close()
    return pd.DataFrame(rows, columns=["objective", "starts", "converged", "status", *params])


def _diagnose(prob: Problem, x: np.ndarray, status: str, H) -> tuple[str, ...]:
    out = []
    if status != "converged":
        out.append(f"the best start stopped with status {status!r}: the fit did not converge")
    labels = prob.layout.labels
    at_bound = np.zeros(len(x), bool)
    for name, shape, c, sl in prob.layout.free_fields():
        u = x[sl]
        value = _fmt(_plain(c.forward(u.reshape(shape))))
        lo, hi = c.box
        for end, b in (("lower", lo), ("upper", hi)):
            if np.isfinite(b):
                hit = np.abs(u - b) <= BOUND_RTOL * max(1.0, abs(b))
                if hit.any():
                    at_bound[sl] |= hit
                    out.append(
                        f"{name} = {value} sits at its {end} bound ({c!r}): the optimum lies on the bound"
                    )
        if c.transform != "identity":
            # a scale whose log-coordinate the objective no longer feels where the fit ended
            # (converged, ran off, or stalled there) is running to the open end of its
            # constraint (zero, or infinity); a point where the steps ran out says nothing of
            # where it heads
            idx = np.arange(sl.start, sl.stop)
            numb = np.zeros(len(idx), bool)
            ended = status in ("converged", "diverged", "stalled")
            if ended and H is not None and np.all(np.isfinite(H)) and H.size:
                diag = np.abs(np.diag(np.asarray(H)))
                numb = diag[idx] <= 1e-12 * max(diag.max(), 1e-300)
            open_end = np.isinf(lo) & (u < 0) | np.isinf(hi) & (u > 0)
            if np.any(open_end & ((np.abs(u) > 46) | numb) & ~at_bound[sl]):
                end = "zero" if np.all(u[open_end] < 0) else "infinity"
                out.append(
                    f"{name} = {value} is running to {end}, the open end of its constraint ({c!r}): "
                    "the optimum may lie on the boundary (declare a closed bound to let it sit there)"
                )
    if status != "converged" or H is None:
        return tuple(out)  # curvature away from a minimum says nothing about identification
    keep = ~at_bound
    H = np.asarray(H)[np.ix_(keep, keep)]
    if np.all(np.isfinite(H)) and H.size:
        # scale-free curvature: correlation-like normalisation by the diagonal
        d = np.sqrt(np.maximum(np.abs(np.diag(H)), 1e-300))
        evals, evecs = np.linalg.eigh(H / np.outer(d, d))
        v = np.abs(evecs[:, 0])
        kept = [lab for lab, k in zip(labels, keep) if k]
        names = [kept[k] for k in np.argsort(-v)[:3] if v[k] > 0.2]
        rel = evals[0] / max(evals[-1], 1e-300)
        if rel < -1e-6:
            # the exact curvature has a direction of descent: a saddle, not a minimum
            out.append(
                f"the curvature at the optimum is not positive (relative curvature {rel:.1e}) along "
                f"{names}: it may be a saddle point rather than a minimum"
            )
        elif rel < 1e-9:
            out.append(
                f"the optimum sits on a flat ridge (relative curvature {max(rel, 0.0):.1e}) "
                f"along {names}: these parameters are poorly determined"
            )
    return tuple(out)
