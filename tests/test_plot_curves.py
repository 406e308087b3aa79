"""Plots a researcher keeps (issue 21, part 3): plot_fit's fitted curves per model size, its
extrapolation and bootstrap band, readable log ticks, distinct colours and outside legends.

No fits: the tables are made from known parameters, the samples by perturbing them."""

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import jaxlaws
from jaxlaws import laws, plot
from jaxlaws.propose import MixtureProposal

HOFFMANN = laws.ChinchillaParams(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
SIZES = [1e8, 3e8, 1e9]


def _table(sizes=SIZES, jitter=False):
    """Four runs per model size (20 tokens per parameter, give or take), loss from the law
    with 0.3% noise; ``jitter``: sizes that differ in their eighth digit, as read off a plot."""
    rng = np.random.default_rng(0)
    N = np.repeat(np.asarray(sizes, float), 4)
    if jitter:
        N = N * (1 + 1e-8 * np.arange(N.size))
    D = N * np.tile([5.0, 10.0, 20.0, 40.0], len(sizes))
    loss = np.asarray(laws.chinchilla(HOFFMANN, N, D)) * np.exp(rng.normal(0, 0.003, N.size))
    return pd.DataFrame({"N": N, "D": D, "loss": loss})


def _samples(n=25):
    """``n`` parameter sets near Hoffmann's, stacked on a leading axis."""
    rng = np.random.default_rng(1)
    return laws.ChinchillaParams(*(np.float64(v) * np.exp(rng.normal(0, 0.02, n)) for v in HOFFMANN))


def _sample_predictions(samples, N, D):
    """``(S, n)`` by a Python loop over the samples: the reference for the band."""
    return np.stack(
        [
            np.asarray(laws.chinchilla(laws.ChinchillaParams(*(f[i] for f in samples)), N, D))
            for i in range(len(samples.E))
        ]
    )


def _lines(ax, gid):
    return [line for line in ax.lines if line.get_gid() == gid]


def _labels(axis):
    return [t.get_text() for t in axis.get_majorticklabels() + axis.get_minorticklabels()]


def test_one_curve_per_model_size_coloured_by_size():
    fig = plot.plot_fit("chinchilla", HOFFMANN, _table(jitter=True))
    ax = fig.axes[0]
    curves = _lines(ax, "fit-curve")
    assert [c.get_label() for c in curves] == ["N=100M", "N=300M", "N=1B"]  # jittered sizes merged
    colors = {tuple(c.get_color()) for c in curves}
    assert len(colors) == 3  # viridis by log N
    assert len(_lines(ax, "frontier")) == 1  # the compute-optimal frontier of the Chinchilla law
    assert _outside_right(fig, ax, ax.get_legend())  # and the sizes' legend above it
    for c, n in zip(curves, SIZES):  # each is the law at its size along compute 6ND (to the jitter)
        x, y = c.get_data()
        np.testing.assert_allclose(y, laws.chinchilla(HOFFMANN, n, x / (6 * n)), rtol=1e-8)
    by = plot.plot_fit("chinchilla", HOFFMANN, _table().assign(g=lambda t: t.N > 2e8), by="g")
    assert len(_lines(by.axes[0], "fit-curve")) == 2  # one per group of the by column


def test_extrapolated_point_is_the_law_there():
    fig = plot.plot_fit("chinchilla", HOFFMANN, _table(), extrapolate_to={"N": 70e9, "D": 1.4e12})
    ax = fig.axes[0]
    (point,) = _lines(ax, "extrapolated")
    assert point.get_xdata()[0] == pytest.approx(6 * 70e9 * 1.4e12, rel=1e-12)
    assert point.get_ydata()[0] == pytest.approx(float(laws.chinchilla(HOFFMANN, 70e9, 1.4e12)), rel=1e-12)
    (curve,) = _lines(ax, "extrapolation")  # the 70B model's curve, out to the point
    assert curve.get_xdata()[-1] == pytest.approx(6 * 70e9 * 1.4e12, rel=1e-12)
    assert ax.get_xlim()[1] > 6 * 70e9 * 1.4e12
    # a compute: the point on the compute-optimal frontier
    fig = plot.plot_fit("chinchilla", HOFFMANN, _table(), extrapolate_to=1e24)
    (point,) = _lines(fig.axes[0], "extrapolated")
    N, D = laws.chinchilla_optimal(HOFFMANN, 1e24)
    assert point.get_ydata()[0] == pytest.approx(float(laws.chinchilla(HOFFMANN, N, D)), rel=1e-12)
    assert "loss = " in next(t.get_text() for t in fig.axes[0].texts)


def test_band_is_percentiles_of_the_samples_predictions():
    samples = _samples()
    n = 3e8
    fig = plot.plot_fit(
        "chinchilla",
        HOFFMANN,
        _table([n]),
        samples=samples,
        frontier=False,
        extrapolate_to={"N": 3e9, "D": 6e10},
    )
    ax = fig.axes[0]
    (curve,) = _lines(ax, "fit-curve")
    x = curve.get_xdata()
    bands = [c for c in ax.collections if c.get_gid() == "band"]
    assert len(bands) == 2  # the curve's and the extrapolation's
    vertices = bands[0].get_paths()[0].vertices
    for i in (0, 17, len(x) - 1):
        ys = vertices[vertices[:, 0] == x[i], 1]
        preds = _sample_predictions(samples, n, x[i] / (6 * n))
        lo, hi = np.percentile(preds, [5.0, 95.0])
        np.testing.assert_allclose([ys.min(), ys.max()], [lo, hi], rtol=1e-12)
    # the extrapolated point's interval
    (interval,) = [c for c in ax.collections if c.get_gid() == "extrapolated-interval"]
    (segment,) = interval.get_segments()
    lo, hi = np.percentile(_sample_predictions(samples, 3e9, 6e10), [5.0, 95.0])
    np.testing.assert_allclose(sorted(segment[:, 1]), [lo, hi], rtol=1e-12)


def test_a_bootstrap_result_gives_its_converged_resamples():
    from jaxlaws.uncertainty import BootstrapResult

    samples = _samples(8)
    failed = np.array([False, True, False, False, True, False, False, False])
    with_nan = laws.ChinchillaParams(*(np.where(failed, np.nan, v) for v in samples))
    status = np.where(failed, "max_steps", "converged")
    bs = BootstrapResult(laws.CHINCHILLA, None, with_nan, {}, np.zeros(8), status)
    table = _table([3e8])
    a = plot.plot_fit("chinchilla", HOFFMANN, table, samples=bs, frontier=False)
    kept = laws.ChinchillaParams(*(v[~failed] for v in samples))
    b = plot.plot_fit("chinchilla", HOFFMANN, table, samples=kept, frontier=False)
    (band_a,), (band_b,) = ([c for c in f.axes[0].collections if c.get_gid() == "band"] for f in (a, b))
    np.testing.assert_array_equal(band_a.get_paths()[0].vertices, band_b.get_paths()[0].vertices)
    with pytest.raises(
        ValueError, match="samples are a bootstrap of law 'chinchilla', not 'data_constrained'"
    ):
        plot.plot_fit("data_constrained", laws.MUENNIGHOFF_C4, table.assign(U=table.D), samples=bs)


def test_a_law_without_N_and_D_curves_along_its_first_input():
    p = laws.FilteringParams(a=20.0, b=-0.15, tau=3.0, d=0.3)
    samples = np.geomspace(1e8, 1e10, 5)
    table = pd.DataFrame({"samples": np.tile(samples, 2), "pool_size": np.repeat([1e7, 1e8], 5)}).assign(
        error=lambda t: np.asarray(laws.filtering(p, t["samples"].to_numpy(), t["pool_size"].to_numpy()))
    )
    fig = plot.plot_fit("filtering", p, table, extrapolate_to=1e11)
    ax = fig.axes[0]
    assert [c.get_label() for c in _lines(ax, "fit-curve")] == ["pool_size=10M", "pool_size=100M"]
    points = _lines(ax, "extrapolated")  # each pool's curve out to 1e11 samples
    want = [float(laws.filtering(p, 1e11, u)) for u in (1e7, 1e8)]
    np.testing.assert_allclose([pt.get_ydata()[0] for pt in points], want, rtol=1e-12)


def test_log_ticks_are_plain_within_a_decade_and_powers_of_ten_across_many():
    fig = plot.plot_fit("chinchilla", HOFFMANN, _table(), extrapolate_to=1e24)
    fig.draw_without_rendering()
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    assert hi / lo < 10  # the loss axis spans less than a decade
    y = [t for t in _labels(ax.yaxis) if t]
    assert y and all("times" not in t and "$" not in t for t in y)
    assert all(float(t) > 0 for t in y)  # plain numbers: '2', '2.5', '3'
    x = [t for t in _labels(fig.axes[1].xaxis) if t]  # compute: many decades, 10^k only
    assert x and all(t.startswith("$10^{") for t in x)
    # one helper for every log axis: within a decade of large values, '2e9'; 1-2.5 decades:
    # decades as 10^k and the minor ticks 2, 3 and 5 by their mantissa
    fig = plot.plot_fit("chinchilla", HOFFMANN, _table(), x="N")
    fig.draw_without_rendering()
    rax = fig.axes[1]
    for lim, want in [
        ((2e9, 7e9), {"2e9", "3e9", "4e9", "5e9", "6e9"}),
        ((1e8, 3e9), {"$10^{8}$", "$10^{9}$", "2", "3", "5"}),
    ]:
        rax.set_xlim(*lim)
        fig.draw_without_rendering()
        labels = {t for t in _labels(rax.xaxis) if t}
        assert labels == want
        assert not any("times" in t for t in labels)


def _proposal(k, B=4, S=6):
    """A proposal over ``k`` domains and ``B`` budgets, with ``S`` bootstrap samples."""
    rng = np.random.default_rng(0)
    w = rng.dirichlet(np.ones(k), B)[None]  # (1, B, k)
    samples = np.clip(w[None] + rng.normal(0, 0.01, (S, *w.shape)), 0, 1)
    z = np.zeros((1, B))
    return MixtureProposal(
        domains=tuple(f"domain_{i}" for i in range(k)),
        outputs=("loss",),
        budgets=np.geomspace(1e9, 1e11, B),
        kl=np.zeros(1),
        weights=w,
        objective=z,
        metrics=z[..., None],
        epochs=None,
        bound=np.zeros(w.shape, int),
        uncapped_weights=w,
        uncapped_objective=z,
        gap=z,
        status=np.full((1, B), "converged"),
        steps=z.astype(int),
        n_best=z.astype(int),
        kkt=z,
        samples={"weights": samples, "objective": np.zeros((S, 1, B)), "n_failed": 0},
    )


def _outside_right(fig, ax, legend):
    """The legend's box lies right of the axes' box, in figure coordinates, once drawn."""
    fig.draw_without_rendering()
    to_fig = fig.transFigure.inverted()
    return legend.get_window_extent().transformed(to_fig).x0 >= ax.get_window_extent().transformed(to_fig).x1


@pytest.mark.parametrize("k", [4, 12, 20, 24])
def test_proposals_distinct_colours_bands_in_them_legend_outside(k):
    fig = plot.plot_proposals(_proposal(k), max_domains=k)
    ax = fig.axes[0]
    colors = [tuple(np.round(line.get_color(), 6)) for line in ax.lines]
    assert len(colors) == k and len(set(colors)) == k
    bands = [c for c in ax.collections if c.get_gid() == "band"]
    assert len(bands) == k
    for line, band in zip(ax.lines, bands):  # the domain's colour, translucent, with an edge
        face, edge = band.get_facecolor()[0], band.get_edgecolor()[0]
        np.testing.assert_allclose(face[:3], line.get_color()[:3])
        assert face[3] == pytest.approx(0.2) and edge[3] > 0.5
    assert _outside_right(fig, ax, ax.get_legend())


def test_pools_and_pareto_legends_outside_with_distinct_colours():
    from jaxlaws.decide import MixtureDecision

    fig4 = laws.FilteringMixtureParams(*(jnp.asarray(v, jnp.float64) for v in laws.GOYAL_FIG4))
    fig = plot.plot_pools(fig4, jnp.full(4, 12.8e6), np.geomspace(5e6, 2e8, 30))
    ax = fig.axes[0]
    assert len({line.get_color() for line in ax.lines if line.get_linestyle() == "-"}) == 4
    assert _outside_right(fig, ax, ax.get_legend())
    n = np.geomspace(1e7, 1e9, 5)
    w = np.tile([0.4, 0.3, 0.2, 0.1], (5, 1))
    dec = MixtureDecision(
        n, w, np.linspace(0.9, 0.6, 5), np.full((5, 4), 0.7), np.ones(5, int), np.ones(5, int)
    )
    fig = plot.plot_pareto(dec)
    ax = fig.axes[0]
    assert len({tuple(c.get_facecolor()[0]) for c in ax.collections}) == 4
    assert _outside_right(fig, ax, ax.get_legend())


@pytest.mark.parametrize(
    "kwargs, error, fragment",
    [
        (
            {"extrapolate_to": {"N": 70e9}},
            ValueError,
            "extrapolate_to must give every input of law 'chinchilla'",
        ),
        ({"extrapolate_to": -1.0}, ValueError, "extrapolate_to must be a positive number"),
        ({"samples": HOFFMANN}, ValueError, "samples.E must be numbers with a leading axis"),
        ({"samples": [1, 2]}, TypeError, "samples must be a BootstrapResult"),
        ({"samples": _samples()._replace(E=np.full(25, np.nan))}, ValueError, "not finite in sample 0"),
        ({"by": "zz"}, ValueError, "missing column 'zz' for by of plot_fit"),
        ({"level": 1.5}, ValueError, "level must be between 0 and 1"),
    ],
)
def test_bad_options_are_one_line(kwargs, error, fragment):
    with pytest.raises(error) as info:
        plot.plot_fit("chinchilla", HOFFMANN, _table(), **kwargs)
    assert type(info.value) is error and fragment in str(info.value) and "\n" not in str(info.value)


def test_a_proposal_plot_leaves_out_domains_never_above_zero():
    params = jaxlaws.laws.MixingExpParams(
        c=np.array([1.5, 2.0]), t=np.array([[-2.0, -0.5, 0.3], [0.2, -1.5, -0.6]])
    )
    prop = jaxlaws.propose_mixture("mixing_exp", params, budgets=[1e9, 1e10])  # d2 at 0
    fig = jaxlaws.plot.plot_proposals(prop)
    legend = fig.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["d1", "d0"]
    assert legend.get_title().get_text() == "top 2 of 3 (1 at 0)"
