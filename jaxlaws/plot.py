"""Plots, thin over the API: matplotlib ``Figure`` objects built without pyplot (headless).

``import jaxlaws`` does not import matplotlib; this module does, when called.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = [
    "plot_fit",
    "plot_isoflop",
    "plot_bootstrap",
    "plot_pools",
    "plot_pareto",
    "plot_mixture",
    "plot_proposals",
]


def _figure(ncols=1, nrows=1, size=(6.0, 4.0)):
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _law_and_params(law, params, where: str):
    """The :class:`~jaxlaws.laws.Law` (from a name or a Law) and its parameters, checked: every
    field a finite number inside its declared constraint. One-line errors naming the field."""
    from jaxlaws.laws import Law, get

    if not isinstance(law, str | Law):
        raise TypeError(f"{where}: law must be a law's name or a jaxlaws Law, got {type(law).__name__}")
    law = get(law)
    if not isinstance(params, law.params | Mapping) and not hasattr(params, "_asdict"):
        hint = " (pass its .params)" if hasattr(params, "params") and hasattr(params, "law") else ""
        raise TypeError(
            f"{where}: params must be the parameters of law {law.name!r} (a {law.params.__name__} or "
            f"a mapping of {list(law.param_names)} to numbers), got {type(params).__name__}{hint}"
        )
    params = law.make_params(params)
    for name, c, v in zip(law.param_names, law.constraints, params):
        value = np.asarray(v, np.float64)
        shown = value.tolist()
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{where}: parameter {name} of law {law.name!r} is not finite: {shown!r}")
        if not c.contains(value):
            raise ValueError(
                f"{where}: parameter {name} of law {law.name!r} is {shown!r}, outside its constraint {c!r}"
            )
    return law, params


def _short(v) -> str:
    """A parameter's value in 4 significant digits (a list for a vector)."""
    v = np.asarray(v, np.float64)
    return f"{float(v):.4g}" if v.ndim == 0 else "[" + ", ".join(f"{x:.4g}" for x in v.ravel()) + "]"


def _check_predictions(law, params, pred, d, where: str, positive: bool):
    """One line naming the first row where the law predicts a non-finite (or, for a log axis,
    a non-positive) value, the inputs there and the parameters."""
    rows = np.asarray(pred, np.float64).reshape(len(d), -1)
    bad = ~np.isfinite(rows) | (rows <= 0 if positive else False)
    if not bad.any():
        return
    i, j = (int(v) for v in np.argwhere(bad)[0])
    at = ", ".join(
        f"{n}={np.asarray(v)[i]:.4g}" for n, v in zip(law.inputs, d.inputs) if np.asarray(v).ndim == 1
    )
    ps = ", ".join(f"{k}={_short(v)}" for k, v in params._asdict().items())
    need = "finite positive predictions for its log axis" if positive else "finite predictions"
    raise ValueError(
        f"{where}: law {law.name!r} with {ps} predicts {float(rows[i, j])!r} at row {d.index[i]!r}"
        f"{f' ({at})' if at else ''}; {where} needs {need}"
    )


def plot_fit(law, params, data, *, x: str | None = None, columns=None, target: str | None = None):
    """The fitted law against the data (log-log), with log residuals below.

    Args:
        law: the :class:`~jaxlaws.laws.Law` or its name.
        params: its parameters (its ``NamedTuple``, or a mapping of name to value), each
            inside its declared constraint.
        data: the table fitted (a positive target: the axes are logarithmic).
        x: the column on the horizontal axis (default: compute ``6 N D`` when the law has
            ``N`` and ``D``, else its first input).
        columns, target: the column mapping used in the fit.

    Returns:
        A ``matplotlib.figure.Figure`` with two axes: data and predictions; residuals.

    Raises:
        TypeError: ``law`` or ``params`` of the wrong kind.
        ValueError: parameters of another law, missing, not finite or outside their
            constraints; bad data (as for :func:`jaxlaws.fit`); predictions at the data that
            are not finite and positive (a log axis cannot show them).
    """
    from jaxlaws import domains
    from jaxlaws.data import _as_float, _column_error, prepare

    law, params = _law_and_params(law, params, "plot_fit")
    d = prepare(law, data, columns=columns, target=target)
    named = dict(zip(law.inputs, d.inputs))
    if x is None and "N" in named and "D" in named:
        xs, xlabel = 6.0 * named["N"] * named["D"], "compute 6ND (FLOPs)"
    else:
        col = x or law.inputs[0]
        if col in data:  # a column on a log axis: finite and positive
            xs = _as_float(np.asarray(data[col]), col, d.index)
            domains.positive.validate(xs, [col], d.index)
        elif col in named:
            xs = named[col]
        else:
            raise _column_error(
                col, "x of plot_fit", list(data.columns if hasattr(data, "columns") else data)
            )
        xlabel = col
    pred = np.asarray(law(params, *d.inputs))
    _check_predictions(law, params, pred, d, "plot_fit", positive=True)
    fig, axes = _figure(1, 2, size=(6.5, 6.0))
    ax, rax = axes[0, 0], axes[1, 0]
    ax.scatter(xs, d.y, s=12, label="data", color="C0")
    ax.scatter(xs, pred, s=8, marker="x", label=f"{law.name} fit", color="C1")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylabel(d.columns["target"])
    ax.set_title(f"{law.name}: data and fit")
    ax.legend()
    rax.scatter(xs, np.log(pred) - np.log(d.y), s=10, color="C2", label="log residual")
    rax.axhline(0.0, color="k", lw=0.8)
    rax.set_xscale("log")
    rax.set_xlabel(xlabel)
    rax.set_ylabel("log(pred) - log(obs)")
    return fig


def plot_isoflop(result, data, *, compute: str = "C", N: str = "N", loss: str = "loss"):
    """IsoFLOP profiles: loss against N per budget, each budget's parabola vertex, and the
    compute-optimal frontier ``N*(C) = k C^a``.

    Args:
        result: an :class:`~jaxlaws.isoflop.IsoflopResult`; data: its table.

    Returns:
        A ``Figure`` with two axes: the profiles (one series per budget plus the vertices),
        and ``N*`` against ``C`` with the fitted power law.
    """
    fig, axes = _figure(2, 1, size=(11.0, 4.2))
    ax, fx = axes[0, 0], axes[0, 1]
    budgets = result.budgets
    for i, c in enumerate(budgets["C"]):
        g = data[np.isclose(data[compute].to_numpy(float), c, rtol=1e-9)].sort_values(N)
        ax.plot(g[N], g[loss], "o-", ms=3, lw=0.8, color=f"C{i % 10}", label=f"{c:.2g}")
    ax.scatter(budgets["N_opt"], budgets["loss_opt"], marker="*", s=80, color="k", zorder=3, label="N*")
    ax.set_xscale("log")
    ax.set_xlabel("parameters N")
    ax.set_ylabel(loss)
    ax.set_title("isoFLOP profiles")
    ax.legend(fontsize=6, ncol=2, title="C (FLOPs)", title_fontsize=7)
    fx.scatter(budgets["C"], budgets["N_opt"], color="k", label="N* per budget")
    cs = np.geomspace(budgets["C"].min(), budgets["C"].max(), 50)
    fx.plot(cs, result.k * cs**result.a, color="C3", label=f"N* = {result.k:.3g} C^{result.a:.3f}")
    fx.set_xscale("log")
    fx.set_yscale("log")
    fx.set_xlabel("compute C (FLOPs)")
    fx.set_ylabel("optimal N*")
    fx.set_title("compute-optimal frontier")
    fx.legend()
    return fig


def plot_bootstrap(bs, derived: Mapping | None = None, bins: int = 40):
    """Bootstrap distributions: one histogram per parameter (and per derived quantity), the
    point estimate and the interval marked (95% for parameters, a derived quantity's own).

    Args:
        bs: a :class:`~jaxlaws.BootstrapResult`.
        derived: ``{name: quantity}``, each quantity a function of one parameter set
            (``lambda p: p.beta / (p.alpha + p.beta)``, computed with
            :meth:`~jaxlaws.BootstrapResult.derived`) or a ``Derived`` it returned.
        bins: histogram bins.

    Returns:
        A ``matplotlib.figure.Figure`` with one axis per parameter, then per derived quantity.

    Raises:
        TypeError: ``bs`` is not a ``BootstrapResult``, ``derived`` not a mapping, or one of
            its values neither a function nor a ``Derived``.
        ValueError: a derived name that is also a parameter's, or as for
            :meth:`~jaxlaws.BootstrapResult.derived`.
    """
    from jaxlaws.uncertainty import BootstrapResult, Derived

    if not isinstance(bs, BootstrapResult):
        raise TypeError(
            f"plot_bootstrap: bs must be a BootstrapResult from jaxlaws.bootstrap, got {type(bs).__name__}"
        )
    if derived is not None and not isinstance(derived, Mapping):
        raise TypeError(
            "plot_bootstrap: derived must map names to functions of the parameters or Derived "
            f"quantities, got {type(derived).__name__}"
        )
    frame = bs.frame()
    quantities: dict[str, Derived] = {}
    for name, q in (derived or {}).items():
        if name in frame:
            raise ValueError(
                f"plot_bootstrap: derived quantity {name!r} has the name of a parameter; give it another"
            )
        if isinstance(q, Derived):
            quantities[name] = q
        elif callable(q):
            quantities[name] = bs.derived(q)
        else:
            raise TypeError(
                f"plot_bootstrap: derived[{name!r}] must be a function of the parameters or a Derived "
                f"from BootstrapResult.derived, got {type(q).__name__}"
            )
    table = bs.table()
    names = list(frame.columns) + list(quantities)
    fig, axes = _figure(len(names), 1, size=(2.6 * len(names), 2.6))
    for ax, name in zip(axes[0], names):
        if name in frame:
            values, point = frame[name].to_numpy(), table.loc[name, "estimate"]
            lo, hi = table.loc[name, "lower"], table.loc[name, "upper"]
        else:
            d = quantities[name]
            values, point = np.ravel(d.samples), float(np.ravel(d.point)[0])
            lo, hi = (float(np.ravel(v)[0]) for v in d.interval)
        ax.hist(values, bins=bins, color="C0", alpha=0.8)
        ax.axvline(point, color="k", lw=1.2)
        ax.axvspan(lo, hi, color="C1", alpha=0.2)
        ax.set_title(str(name))
    return fig


def plot_pools(params, sizes, n, weights=None, *, names=None, form: str = "paper"):
    """Error against samples seen for each pool alone, and for a mixture, with each pool's
    pass boundaries marked (dotted lines at ``n = j N_i``).

    Args:
        params: :class:`~jaxlaws.laws.FilteringMixtureParams`; sizes: ``(P,)``.
        n: samples seen (the horizontal grid).
        weights: a mixture to draw too (``(P,)``), or ``None``.
    """
    import jax.numpy as jnp

    from jaxlaws.laws import filtering_mixture

    n = np.asarray(n, float)
    sizes = np.asarray(sizes, float)
    P = sizes.shape[0]
    names = list(names) if names is not None else [f"pool {i}" for i in range(P)]
    fig, axes = _figure(1, 1, size=(6.5, 4.2))
    ax = axes[0, 0]
    for i in range(P):
        w = np.eye(P)[i]
        y = np.asarray(
            filtering_mixture(params, jnp.asarray(n), jnp.asarray(sizes), jnp.asarray(w), form=form)
        )
        ax.plot(n, y, color=f"C{i}", label=names[i])
        for j in range(1, int(n.max() // sizes[i]) + 1):
            if j * sizes[i] >= n.min():
                ax.axvline(j * sizes[i], color=f"C{i}", lw=0.4, ls=":")
    if weights is not None:
        y = filtering_mixture(
            params, jnp.asarray(n), jnp.asarray(sizes), jnp.asarray(weights, float), form=form
        )
        ax.plot(n, np.asarray(y), color="k", lw=2, label="mixture " + ", ".join(f"{w:.2f}" for w in weights))
    ax.set_xscale("log")
    ax.set_xlabel("samples seen n")
    ax.set_ylabel("error")
    ax.set_title("error against compute, pass boundaries dotted")
    ax.legend(fontsize=7)
    return fig


def plot_pareto(decision, names=None):
    """The filtering frontier: best weights against budget (stacked), and the predicted
    error of the gradient optimum beside the best top-k mixture.

    Args:
        decision: a :class:`~jaxlaws.decide.MixtureDecision` over a sweep of budgets (from
            :func:`~jaxlaws.decide.optimize_mixture`).
        names: one label per pool (default ``pool 0``, ``pool 1``, ...).

    Raises:
        TypeError: ``decision`` is not a ``MixtureDecision``.
        ValueError: ``names`` has not one label per pool.
    """
    from jaxlaws.decide import MixtureDecision

    if not isinstance(decision, MixtureDecision):
        raise TypeError(
            "plot_pareto: decision must be a MixtureDecision from jaxlaws.decide.optimize_mixture, "
            f"got {type(decision).__name__}"
        )
    n = np.asarray(decision.n, float)
    w = np.asarray(decision.weights, float)
    P = w.shape[-1]
    names = list(names) if names is not None else [f"pool {i}" for i in range(P)]
    if len(names) != P:
        raise ValueError(f"plot_pareto: names must give one label per pool ({P}), got {len(names)}")
    fig, axes = _figure(2, 1, size=(11.0, 4.2))
    ax, ex = axes[0, 0], axes[0, 1]
    ax.stackplot(n, w.T, labels=names, alpha=0.85)
    ax.set_xscale("log")
    ax.set_ylim(0, 1)
    ax.set_xlabel("samples seen n")
    ax.set_ylabel("sampling weight")
    ax.set_title("best weights per budget")
    ax.legend(fontsize=7, loc="lower left")
    ex.plot(n, np.asarray(decision.error), "k-", label="gradient optimum")
    ex.plot(n, np.asarray(decision.topk_errors).min(axis=1), "C3--", label="best top-k (uniform)")
    ex.set_xscale("log")
    ex.set_xlabel("samples seen n")
    ex.set_ylabel("predicted error")
    ex.set_title("Pareto frontier")
    ex.legend()
    return fig


def plot_mixture(
    law, params, data, *, domain=None, columns=None, target=None, reference=None, at=None, max_panels=6
):
    """Predicted metrics against one domain's weight, with the swarm's runs.

    The curve moves the weight of ``domain`` from 0 to 1 and scales the other domains of
    ``reference`` (default: the swarm's mean mixture) to fill the rest; the dots are the
    runs, at their own weight of the domain (their other domains differ, so they scatter
    about the curve).

    Args:
        law, params: a fitted mixture law (an input on the simplex), or its name, and its
            parameters (its ``NamedTuple`` or a mapping), each inside its constraint.
        data: the swarm (:class:`~jaxlaws.swarm.Swarm` or the table fitted).
        domain: the domain's column name or index (default: the first).
        columns, target: the fit's column mapping (a swarm supplies its own).
        reference: the mixture the other domains follow (default: the runs' mean).
        at: values of the law's other inputs (default: their median over the runs).
        max_panels: at most this many metrics, one panel each.

    Returns:
        A ``matplotlib.figure.Figure``.

    Raises:
        TypeError: ``law`` or ``params`` of the wrong kind.
        ValueError: parameters of another law, missing, not finite or outside their
            constraints; bad data; predictions at the runs that are not finite.
    """
    from jaxlaws.data import prepare

    law, params = _law_and_params(law, params, "plot_mixture")
    d = prepare(law, data, columns=columns, target=target, positive_target=False)
    mix = law.simplex_inputs
    if len(mix) != 1:
        raise ValueError(
            f"plot_mixture needs a law with one input on the simplex; {law.name!r} has {len(mix)}"
        )
    _check_predictions(law, params, law(params, *d.inputs), d, "plot_mixture", positive=False)
    j_in = law.inputs.index(mix[0])
    r = np.asarray(d.inputs[j_in])
    names = d.columns[mix[0]] if isinstance(d.columns[mix[0]], list) else [f"d{i}" for i in range(r.shape[1])]
    if domain is None:
        j = 0
    elif isinstance(domain, int | np.integer) and not isinstance(domain, bool):
        j = int(domain)
        if not 0 <= j < len(names):
            raise ValueError(f"domain {j} is out of range: the mixture has {len(names)} domains")
    elif domain in names:
        j = names.index(domain)
    else:
        raise ValueError(f"domain {domain!r} is not one of the mixture's domains {names}")
    ref = np.asarray(r.mean(axis=0) if reference is None else reference, np.float64)
    if ref.shape != (r.shape[1],):
        raise ValueError(f"reference must have one weight per domain ({r.shape[1]}), got shape {ref.shape}")
    rest = np.delete(ref, j)
    rest = rest / rest.sum() if rest.sum() > 0 else np.full(rest.size, 1.0 / max(rest.size, 1))
    x = np.linspace(0.0, 1.0, 201)
    grid = np.insert(np.outer(1.0 - x, rest), j, x, axis=1)
    args = []
    for i, (n, v) in enumerate(zip(law.inputs, d.inputs)):
        if i == j_in:
            args.append(grid)
        else:
            value = (at or {}).get(n, np.median(np.asarray(v, np.float64)))
            args.append(np.full(x.size, float(value)))
    pred = np.asarray(law(params, *args)).reshape(x.size, -1)
    y = np.asarray(d.y).reshape(len(d), -1)
    tcols = d.columns["target"] if isinstance(d.columns["target"], list) else [d.columns["target"]]
    k = min(y.shape[1], max_panels)
    ncols = min(k, 3)
    nrows = -(-k // ncols)
    fig, axes = _figure(ncols, nrows, size=(4.2 * ncols, 3.4 * nrows))
    for m in range(nrows * ncols):
        ax = axes[m // ncols, m % ncols]
        if m >= k:
            ax.set_visible(False)
            continue
        ax.scatter(r[:, j], y[:, m], s=10, color="C0", alpha=0.7, label="runs")
        ax.plot(x, pred[:, m], color="C1", label=f"{law.name}, others as reference")
        ax.set_xlabel(f"weight of {names[j]}")
        ax.set_ylabel(tcols[m] if m < len(tcols) else f"metric {m}")
        if m == 0:
            ax.legend(fontsize="small")
    fig.suptitle(f"{law.name}: predicted metrics against the weight of {names[j]}")
    return fig


def plot_proposals(proposal, *, level: float = 0.9, kl_index: int = 0, max_domains: int = 12):
    """Proposed weights against the budget, with bootstrap intervals where there are samples.

    Args:
        proposal: a :class:`~jaxlaws.propose.MixtureProposal`.
        level: the intervals' coverage (with bootstrap samples).
        kl_index: which KL strength of a path to draw.
        max_domains: draw the domains with the largest weights, at most this many.

    Raises:
        TypeError: ``proposal`` is not a ``MixtureProposal``.
        ValueError: ``kl_index`` out of range.

    Returns:
        A ``matplotlib.figure.Figure``: a line per domain over the budgets (bars for one
        budget), and the implied epochs below when unique tokens were given.
    """
    from jaxlaws.propose import MixtureProposal

    if not isinstance(proposal, MixtureProposal):
        raise TypeError(
            "plot_proposals: proposal must be a MixtureProposal from jaxlaws.propose_mixture, "
            f"got {type(proposal).__name__}"
        )
    if not 0 <= kl_index < len(proposal.kl):
        raise ValueError(
            f"kl_index {kl_index} is out of range: the proposal has {len(proposal.kl)} strengths"
        )
    w = proposal.weights[kl_index]  # (B, k)
    order = np.argsort(-w.max(axis=0))[:max_domains]
    samples = proposal.samples["weights"][:, kl_index] if proposal.samples is not None else None
    if samples is not None and samples.shape[0] >= 2:
        lo, hi = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=0)
    else:
        lo = hi = None
    rows = 2 if proposal.epochs is not None else 1
    fig, axes = _figure(1, rows, size=(7.0, 3.6 * rows))
    ax = axes[0, 0]
    B = w.shape[0]
    budgets = proposal.budgets
    if B == 1:
        pos = np.arange(order.size)
        err = (
            None if lo is None else np.abs(np.stack([w[0, order] - lo[0, order], hi[0, order] - w[0, order]]))
        )
        ax.bar(pos, w[0, order], yerr=err, color="C0", capsize=3)
        ax.set_xticks(pos, [proposal.domains[i] for i in order], rotation=45, ha="right")
        ax.set_ylabel("proposed weight")
    else:
        for c, i in enumerate(order):
            ax.plot(budgets, w[:, i], marker="o", ms=3, color=f"C{c % 10}", label=proposal.domains[i])
            if lo is not None:
                ax.fill_between(budgets, lo[:, i], hi[:, i], color=f"C{c % 10}", alpha=0.2)
        ax.set_xscale("log")
        ax.set_xlabel("budget (tokens)")
        ax.set_ylabel("proposed weight")
        ax.legend(fontsize="small", ncols=2)
    band = f", {level:.0%} bootstrap intervals" if lo is not None else ""
    ax.set_title(f"proposed mixture (kl={proposal.kl[kl_index]:g}){band}")
    if proposal.epochs is not None:
        ex = axes[1, 0]
        e = proposal.epochs[kl_index]
        if B == 1:
            ex.bar(np.arange(order.size), e[0, order], color="C2")
            ex.set_xticks(
                np.arange(order.size), [proposal.domains[i] for i in order], rotation=45, ha="right"
            )
        else:
            for c, i in enumerate(order):
                ex.plot(budgets, e[:, i], color=f"C{c % 10}")
            ex.set_xscale("log")
            ex.set_xlabel("budget (tokens)")
        if proposal.max_epochs is not None:
            ex.axhline(proposal.max_epochs, color="k", ls="--", lw=0.8, label=f"cap {proposal.max_epochs:g}")
            ex.legend(fontsize="small")
        ex.set_yscale("log")
        ex.set_ylabel("implied epochs")
    return fig
