"""Arguments of the public API checked at the boundary (issue 20): plots, bootstrap-derived
quantities and isoFLOP profiles given a wrong kind of object, another law's or out-of-bounds
parameters, non-numbers or non-finite values each raise one ``TypeError`` or ``ValueError``
line naming the argument and what it got, not an ``AttributeError``, a JAX tracer error or a
matplotlib error from deep inside, nor a silent ``nan`` result.

One table of cases; the fits they share are made once per module."""

import pathlib
import types
import warnings

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from synthetic import chinchilla_groups

import jaxlaws
from jaxlaws import plot
from jaxlaws.isoflop import isoflop
from jaxlaws.laws import MixingExpParams, mixing_exp

DATA = pathlib.Path(__file__).parent / "data"
KEYS = ["dataset", "hparams", "warmup", "decay", "param_count", "val", "source_file"]
MIX = MixingExpParams(c=np.array([1.5, 2.0]), t=np.array([[-2.0, -0.5, 0.3], [0.2, -1.5, -0.6]]))
MIX_COLUMNS = {"columns": {"r": ["web", "code", "books"]}, "target": ["bpb_a", "bpb_b"]}


def _isoflop_points():
    """One configuration of Porian et al.'s sweeps (the file's first), row labels kept."""
    points = pd.read_csv(DATA / "porian_isoflop_points.csv")
    first = points.iloc[0]
    return points[np.all([points[k] == first[k] for k in KEYS], axis=0)]


def _profiles(curvature, C=(1e18, 1e19)):
    """Budgets of 7 runs each, loss ``3 - 0.1 u + curvature u^2`` in ``u = log(N / 1e8)``."""
    u = np.tile(np.linspace(-1, 1, 7), len(C))
    c = np.repeat(np.asarray(C, float), 7)
    curv = np.repeat(np.asarray(curvature, float), 7)
    return pd.DataFrame({"C": c, "N": 1e8 * np.exp(u), "loss": 3.0 - 0.1 * u + curv * u * u})


@pytest.fixture(scope="module")
def s():
    """The shared objects: a table, its fit and a bootstrap, a swarm table, isoFLOP points."""
    table = chinchilla_groups(2, by="g")  # 16 rows, columns g, N, D, loss
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jaxlaws.ConvergenceWarning)
        fit = jaxlaws.fit("chinchilla", table, starts=4)
        bs = jaxlaws.bootstrap(0, "chinchilla", table, 8, point=fit)
    assert bs.ok.sum() >= 2
    rng = np.random.default_rng(0)
    r = rng.dirichlet(np.ones(3), 12)
    y = np.asarray(mixing_exp(MIX, r))
    swarm = pd.DataFrame(
        {"web": r[:, 0], "code": r[:, 1], "books": r[:, 2], "bpb_a": y[:, 0], "bpb_b": y[:, 1]}
    )
    iso = _isoflop_points()
    row = iso.index[3]
    return types.SimpleNamespace(
        table=table,
        fit=fit,
        params=fit.params,
        bs=bs,
        swarm=swarm,
        iso=iso,
        iso_row=row,
        iso_nan_loss=iso.assign(loss=iso["loss"].where(iso.index != row, np.nan)),
        iso_inf_n=iso.assign(n=iso["n"].where(iso.index != row, np.inf)),
        iso_nan_flops=iso.assign(flops=iso["flops"].where(iso.index != row, np.nan)),
    )


def _iso(data, **kw):
    return isoflop(data, compute="flops", N="n", loss="loss", **kw)


CASES = [
    # plot_fit: the law and its parameters
    (
        "plot_fit law None",
        lambda s: plot.plot_fit(None, s.params, s.table),
        TypeError,
        "plot_fit: law must be a law's name or a jaxlaws Law, got NoneType",
    ),
    (
        "plot_fit unknown law",
        lambda s: plot.plot_fit("chinchila", s.params, s.table),
        ValueError,
        "unknown law 'chinchila'",
    ),
    (
        "plot_fit a FitResult as params",
        lambda s: plot.plot_fit("chinchilla", s.fit, s.table),
        TypeError,
        "params must be the parameters of law 'chinchilla'",
    ),
    (
        "plot_fit params a list",
        lambda s: plot.plot_fit("chinchilla", [1.8, 400, 400, 0.3, 0.3], s.table),
        TypeError,
        "got list",
    ),
    (
        "plot_fit another law's params",
        lambda s: plot.plot_fit("data_constrained", s.params, s.table),
        ValueError,
        "missing ['R_D_star', 'R_N_star']",
    ),
    (
        "plot_fit unknown field",
        lambda s: plot.plot_fit("chinchilla", {**s.params._asdict(), "gamma": 1.0}, s.table),
        ValueError,
        "unknown ['gamma']",
    ),
    (
        "plot_fit NaN in a mapping",
        lambda s: plot.plot_fit("chinchilla", {**s.params._asdict(), "alpha": np.nan}, s.table),
        ValueError,
        "parameter alpha of law 'chinchilla' is not finite",
    ),
    (
        "plot_fit NaN in the NamedTuple",
        lambda s: plot.plot_fit("chinchilla", s.params._replace(alpha=np.nan), s.table),
        ValueError,
        "plot_fit: parameter alpha of law 'chinchilla' is not finite: nan",
    ),
    (
        "plot_fit outside a constraint",
        lambda s: plot.plot_fit("chinchilla", s.params._replace(E=-5.0), s.table),
        ValueError,
        "plot_fit: parameter E of law 'chinchilla' is -5.0, outside its constraint positive",
    ),
    (
        "plot_fit predictions not finite",
        lambda s: plot.plot_fit("chinchilla", s.params._replace(alpha=-300.0), s.table),
        ValueError,
        "alpha=-300, beta=0.3245 predicts inf at row 0 (N=1e+07, D=2.911e+08)",
    ),
    (
        "plot_fit a non-positive loss on a log axis",
        lambda s: plot.plot_fit("chinchilla", s.params, s.table.assign(loss=-s.table["loss"])),
        ValueError,
        "column 'loss', row 0",
    ),
    (
        "plot_fit x not a column",
        lambda s: plot.plot_fit("chinchilla", s.params, s.table, x="zz"),
        ValueError,
        "missing column 'zz' for x of plot_fit",
    ),
    (
        "plot_fit x not positive",
        lambda s: plot.plot_fit("chinchilla", s.params, s.table, x="g"),
        ValueError,
        "column 'g', row 0: value 0.0 must be positive",
    ),
    # plot_mixture: the same checks
    (
        "plot_mixture law None",
        lambda s: plot.plot_mixture(None, MIX, s.swarm, **MIX_COLUMNS),
        TypeError,
        "plot_mixture: law must be a law's name or a jaxlaws Law, got NoneType",
    ),
    (
        "plot_mixture another law's params",
        lambda s: plot.plot_mixture("mixing_exp", s.params, s.swarm, **MIX_COLUMNS),
        ValueError,
        "law 'mixing_exp' has parameters ['c', 't']",
    ),
    (
        "plot_mixture outside a constraint",
        lambda s: plot.plot_mixture(
            "mixing_exp", MIX._replace(c=np.array([-1.5, 2.0])), s.swarm, **MIX_COLUMNS
        ),
        ValueError,
        "plot_mixture: parameter c of law 'mixing_exp' is [-1.5, 2.0], outside its constraint",
    ),
    (
        "plot_mixture predictions not finite",
        lambda s: plot.plot_mixture(
            "mixing_exp", MIX._replace(t=np.full((2, 3), 800.0)), s.swarm, **MIX_COLUMNS
        ),
        ValueError,
        "predicts inf at row 0; plot_mixture needs finite predictions",
    ),
    (
        "plot_mixture a law without a simplex input",
        lambda s: plot.plot_mixture("chinchilla", s.params, s.table),
        ValueError,
        "plot_mixture needs a law with one input on the simplex",
    ),
    # plots of results: the wrong kind of object
    (
        "plot_pareto None",
        lambda s: plot.plot_pareto(None),
        TypeError,
        "plot_pareto: decision must be a MixtureDecision from jaxlaws.decide.optimize_mixture, got NoneType",
    ),
    ("plot_pareto a bootstrap", lambda s: plot.plot_pareto(s.bs), TypeError, "got BootstrapResult"),
    (
        "plot_proposals None",
        lambda s: plot.plot_proposals(None),
        TypeError,
        "plot_proposals: proposal must be a MixtureProposal from jaxlaws.propose_mixture, got NoneType",
    ),
    ("plot_proposals a fit", lambda s: plot.plot_proposals(s.fit), TypeError, "got FitResult"),
    (
        "plot_bootstrap None",
        lambda s: plot.plot_bootstrap(None),
        TypeError,
        "plot_bootstrap: bs must be a BootstrapResult from jaxlaws.bootstrap, got NoneType",
    ),
    ("plot_bootstrap a fit", lambda s: plot.plot_bootstrap(s.fit), TypeError, "got FitResult"),
    (
        "plot_bootstrap derived a list",
        lambda s: plot.plot_bootstrap(s.bs, [lambda p: p.alpha]),
        TypeError,
        "plot_bootstrap: derived must map names to functions of the parameters or Derived quantities, "
        "got list",
    ),
    (
        "plot_bootstrap derived value a number",
        lambda s: plot.plot_bootstrap(s.bs, {"a": 3}),
        TypeError,
        "plot_bootstrap: derived['a'] must be a function of the parameters or a Derived",
    ),
    (
        "plot_bootstrap derived named as a parameter",
        lambda s: plot.plot_bootstrap(s.bs, {"alpha": lambda p: p.alpha}),
        ValueError,
        "derived quantity 'alpha' has the name of a parameter",
    ),
    (
        "plot_bootstrap derived function returning text",
        lambda s: plot.plot_bootstrap(s.bs, {"a": lambda p: "a"}),
        TypeError,
        "derived: fn must return a number or an array of numbers, got str",
    ),
    # BootstrapResult.derived
    (
        "derived fn not callable",
        lambda s: s.bs.derived(3),
        TypeError,
        "derived: fn must be a function of one parameter set, got int",
    ),
    (
        "derived returns str",
        lambda s: s.bs.derived(lambda p: "x"),
        TypeError,
        "derived: fn must return a number or an array of numbers, got str",
    ),
    (
        "derived returns None",
        lambda s: s.bs.derived(lambda p: None),
        TypeError,
        "derived: fn must return a number or an array of numbers, got NoneType",
    ),
    (
        "derived returns a dict",
        lambda s: s.bs.derived(lambda p: {"a": "x"}),
        TypeError,
        "derived: fn must return a number or an array of numbers, got dict",
    ),
    (
        "derived not finite (jax)",
        lambda s: s.bs.derived(lambda p: jnp.log(-p.alpha)),
        ValueError,
        "the derived quantity is not finite",
    ),
    (
        "derived not finite (numpy)",
        lambda s: s.bs.derived(lambda p: np.log(-p.alpha)),
        ValueError,
        "the derived quantity is not finite",
    ),
    # isoflop
    (
        "isoflop n_bootstrap negative",
        lambda s: _iso(s.iso, n_bootstrap=-1),
        ValueError,
        "n_bootstrap must be a whole number >= 0 (0: no bootstrap), got -1",
    ),
    (
        "isoflop n_bootstrap not whole",
        lambda s: _iso(s.iso, n_bootstrap=2.5),
        ValueError,
        "n_bootstrap must be a whole number >= 0 (0: no bootstrap), got 2.5",
    ),
    ("isoflop n_bootstrap text", lambda s: _iso(s.iso, n_bootstrap="10"), ValueError, "got '10'"),
    (
        "isoflop NaN loss",
        lambda s: _iso(s.iso_nan_loss),
        ValueError,
        "column 'loss', row 3: value nan is not finite",
    ),
    (
        "isoflop infinite N",
        lambda s: _iso(s.iso_inf_n),
        ValueError,
        "column 'n', row 3: value inf is not finite",
    ),
    (
        "isoflop NaN compute",
        lambda s: _iso(s.iso_nan_flops),
        ValueError,
        "column 'flops', row 3: value nan is not finite",
    ),
    (
        "isoflop N not positive",
        lambda s: _iso(s.iso.assign(n=-s.iso["n"])),
        ValueError,
        "column 'n', row 0: value -331776.0 must be positive",
    ),
    (
        "isoflop min_points 0",
        lambda s: _iso(s.iso, min_points=0),
        ValueError,
        "min_points must be a whole number of at least 3 (a parabola has three coefficients), got 0",
    ),
    ("isoflop min_points 1", lambda s: _iso(s.iso, min_points=1), ValueError, "got 1"),
    (
        "isoflop window below 1",
        lambda s: _iso(s.iso, window=0.5),
        ValueError,
        "window must be a factor above 1 in N (or None: all runs), got 0.5",
    ),
    (
        "isoflop a bad key",
        lambda s: _iso(s.iso, n_bootstrap=4, key="k"),
        ValueError,
        "key must be a jax.random key",
    ),
    (
        "isoflop data None",
        lambda s: isoflop(None),
        TypeError,
        "isoflop: data must be a pandas DataFrame, got NoneType",
    ),
    (
        "isoflop one budget with a minimum",
        lambda s: isoflop(_profiles([0.2, -0.2])),
        ValueError,
        "only 1 of 2 budgets have a parabola opening upward",
    ),
    (
        "isoflop a vertex beyond any float N",
        lambda s: isoflop(_profiles([1e-6, 1e-6]), window=None),
        ValueError,
        "the power law N*(C) = k C^a is not finite",
    ),
]


@pytest.mark.parametrize("call, error, fragment", [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_bad_argument_is_one_line_naming_it(s, call, error, fragment):
    with pytest.raises(error) as info:
        call(s)
    assert type(info.value) is error, f"{type(info.value).__name__}: {info.value}"
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_derived_with_numpy_equals_derived_with_jax(s):
    by_numpy = s.bs.derived(lambda p: np.log(p.alpha))
    by_jax = s.bs.derived(lambda p: jnp.log(p.alpha))
    np.testing.assert_allclose(by_numpy.point, by_jax.point, rtol=1e-13)
    np.testing.assert_allclose(by_numpy.samples, by_jax.samples, rtol=1e-13)
    np.testing.assert_allclose(by_numpy.stderr, by_jax.stderr, rtol=1e-12)
    np.testing.assert_allclose(by_numpy.interval, by_jax.interval, rtol=1e-12)
    branch = s.bs.derived(lambda p: p.alpha if p.alpha > p.beta else p.beta)  # Python on the values
    np.testing.assert_allclose(branch.samples, np.maximum(s.bs.frame()["alpha"], s.bs.frame()["beta"]))
    pair = s.bs.derived(lambda p: (p.alpha, p.beta))  # a tuple is one vector per resample
    assert pair.samples.shape == (int(s.bs.ok.sum()), 2)


def test_what_the_boundary_accepts(s):
    fig = plot.plot_fit("chinchilla", s.params._asdict(), s.table)  # a name and a mapping
    assert len(fig.axes) == 2 and fig.axes[0].get_yscale() == "log"
    fig = plot.plot_mixture("mixing_exp", MIX._asdict(), s.swarm, **MIX_COLUMNS)
    assert len(fig.axes) == 2
    exponent = s.bs.derived(lambda p: p.beta / (p.alpha + p.beta))
    fig = plot.plot_bootstrap(s.bs, {"a": lambda p: p.beta / (p.alpha + p.beta), "a (Derived)": exponent})
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[-2:] == ["a", "a (Derived)"]
    np.testing.assert_allclose(fig.axes[-2].patches[0].get_height(), fig.axes[-1].patches[0].get_height())
