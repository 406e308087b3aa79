"""`jaxlaws next`: which runs to train next from a saved fit, as CSV and PNG; bad input is
one line and writes nothing; and `jaxlaws.plot.plot_design`."""

import numpy as np
import pandas as pd
import pytest

from jaxlaws.cli import main

BUDGET = 1e20


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A Chinchilla fit of 12 synthetic runs saved by `jaxlaws fit` (columns named params and
    tokens), a pool of 16 candidates and two target points."""
    d = tmp_path_factory.mktemp("next")
    rng = np.random.default_rng(0)
    N = np.geomspace(1e7, 1e9, 12)
    D = 20 * N * rng.uniform(0.5, 2, N.size)
    loss = (1.8 + 480 / N**0.35 + 2100 / D**0.37) * np.exp(rng.normal(0, 0.005, N.size))
    pd.DataFrame({"params": N, "tokens": D, "loss": loss}).to_csv(d / "runs.csv", index=False)
    Nc = np.repeat(np.geomspace(1e7, 3e9, 8), 2)
    pool = pd.DataFrame({"params": Nc, "tokens": Nc * np.tile([10.0, 40.0], 8)})
    pool["gpu_hours"] = 6 * pool["params"] * pool["tokens"] / 1e15
    pool.to_csv(d / "pool.csv", index=False)
    pd.DataFrame({"params": [7e10, 3e10], "tokens": [1.4e12, 6e11]}).to_csv(d / "big.csv", index=False)
    fit = d / "fit.json"
    argv = ["fit", "--data", str(d / "runs.csv"), "--law", "chinchilla", "--columns", "N=params,D=tokens"]
    assert main([*argv, "--output", str(fit)]) == 0
    return d


def _next(files, *extra, candidates="pool.csv", target="big.csv", cost="6*N*D", budget=str(BUDGET)):
    return [
        "next",
        str(files / "fit.json"),
        "--candidates",
        str(files / candidates),
        "--target",
        str(files / target),
        "--cost",
        cost,
        f"--budget={budget}",
        *extra,
    ]


def test_next_writes_the_picks_in_order_within_the_budget_and_the_plot(files, tmp_path, capsys):
    out, png = tmp_path / "next.csv", tmp_path / "next.png"
    assert main(_next(files, "-n", "5", "--output", str(out), "--plot", str(png))) == 0
    text = capsys.readouterr().out
    assert "criterion 'v', cost power 0.4: 5 picks" in text and "mean predictive variance" in text
    assert f"wrote {out} (5 rows" in text and f"wrote {png}" in text
    picks = pd.read_csv(out)
    assert list(picks.columns) == ["params", "tokens", "gpu_hours", "candidate", "cost", "gain", "score"] + [
        "variance",
        "spent",
    ]
    pool = pd.read_csv(files / "pool.csv")
    rows = pool.loc[picks["candidate"] - 2]  # a candidate is named by its line in the file
    np.testing.assert_allclose(rows[["params", "tokens"]].to_numpy(), picks[["params", "tokens"]].to_numpy())
    np.testing.assert_allclose(picks["cost"], 6 * picks["params"] * picks["tokens"], rtol=1e-12)
    np.testing.assert_allclose(picks["spent"], np.cumsum(picks["cost"]), rtol=1e-12)
    assert picks["spent"].iloc[-1] <= BUDGET and picks["candidate"].is_unique
    assert np.all(np.diff(picks["variance"]) < 0)  # each pick lowers the predicted variance
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the same picks as the Python API on a fit from the saved parameters
    import jaxlaws
    from jaxlaws.design import next_runs
    from jaxlaws.io import load_fit

    saved = load_fit(files / "fit.json")
    res = jaxlaws.fit(
        "chinchilla",
        saved.data(),
        columns={"N": "params", "D": "tokens"},
        starts="init",
        init=saved.record["params"],
    )
    targets = pd.read_csv(files / "big.csv")
    d = next_runs(res, pool, runs=saved.data(), targets=targets, cost="6*N*D", budget=BUDGET, n=5)
    assert list(d.picks["candidate"] + 2) == list(picks["candidate"])
    np.testing.assert_allclose(d.picks["variance"], picks["variance"], rtol=1e-6)


def test_next_with_a_cost_column_and_the_basin_criterion(files, tmp_path, capsys):
    out = tmp_path / "next.csv"
    extra = ["--criterion", "basin", "--cost-power", "1", "--output", str(out)]
    assert main(_next(files, *extra, cost="gpu_hours", budget="1e5")) == 0
    text = capsys.readouterr().out
    assert "criterion 'basin'" in text and "cost power 1:" in text
    picks = pd.read_csv(out)
    np.testing.assert_allclose(picks["cost"], picks["gpu_hours"])
    assert 1 <= len(picks) and picks["spent"].iloc[-1] <= 1e5


def _write(path, text):
    path.write_text(text)
    return path.name


@pytest.mark.parametrize(
    "case, message",
    [
        ("no_column", "--candidates {dir}/nocol.csv has no column 'tokens' (or 'D') for the law's input 'D'"),
        (
            "bad_cost",
            "--candidates {dir}/badcost.csv: cost column 'gpu', row 3: value -3.0 is not a positive cost",
        ),
        ("zero_cost", "--candidates {dir}/pool.csv: cost '0*N', row 2: value 0.0 is not a positive cost"),
        ("budget_negative", "--budget must be a positive number (such as 1e21), got '-1'"),
        ("budget_zero", "--budget must be a positive number (such as 1e21), got '0'"),
        ("budget_text", "--budget must be a positive number (such as 1e21), got 'lots'"),
        ("budget_inf", "--budget must be a positive number (such as 1e21), got 'inf'"),
        (
            "budget_small",
            "--budget 1e+10 is below the cheapest candidate's cost 6e+15 (row 2): no candidate fits",
        ),
        (
            "target_domain",
            "--target {dir}/badtgt.csv: column 'params', row 3: value -30000000000.0 must be positive",
        ),
        (
            "target_missing",
            "--target {dir}/notgt.csv has no column 'params' (or 'N') for the law's input 'N'",
        ),
        ("unknown_name", "cost expression '6*N*X' names 'X', which is not a column of the table"),
        ("n_zero", "-n must be at least 1, got 0"),
        ("power", "--cost-power must be a number >= 0, got -1.0"),
        ("criterion", "argument --criterion: invalid choice: 'q'"),
        ("same", "--plot and --output are the same file"),
        ("overwrite", "is a file this command reads: writing it would destroy it"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(files, tmp_path, capsys, case, message):
    _write(tmp_path / "nocol.csv", "params,gpu\n1e7,5\n")
    _write(tmp_path / "badcost.csv", "params,tokens,gpu\n1e7,1e8,5\n2e7,4e8,-3\n")
    _write(tmp_path / "badtgt.csv", "params,tokens\n7e10,1.4e12\n-3e10,6e11\n")
    _write(tmp_path / "notgt.csv", "tokens\n1.4e12\n")
    (tmp_path / "pool.csv").write_bytes((files / "pool.csv").read_bytes())
    out, png = tmp_path / "o.csv", tmp_path / "o.png"
    outputs = ["--output", str(out), "--plot", str(png)]
    kw = dict(
        no_column=dict(candidates=tmp_path / "nocol.csv"),
        bad_cost=dict(candidates=tmp_path / "badcost.csv", cost="gpu"),
        zero_cost=dict(candidates=tmp_path / "pool.csv", cost="0*N"),
        budget_negative=dict(budget="-1"),
        budget_zero=dict(budget="0"),
        budget_text=dict(budget="lots"),
        budget_inf=dict(budget="inf"),
        budget_small=dict(budget="1e10"),
        target_domain=dict(target=tmp_path / "badtgt.csv"),
        target_missing=dict(target=tmp_path / "notgt.csv"),
        unknown_name=dict(cost="6*N*X"),
    ).get(case, {})
    extra = {
        "n_zero": ["-n", "0"],
        "power": ["--cost-power=-1"],
        "criterion": ["--criterion", "q"],
    }.get(case, [])
    if case == "same":
        outputs = ["--output", str(out), "--plot", str(out)]
    if case == "overwrite":
        outputs = ["--output", str(tmp_path / "pool.csv")]
        kw = dict(candidates=tmp_path / "pool.csv")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(_next(files, *extra, *outputs, **kw)) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxlaws: error:") and message.format(dir=tmp_path) in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_plot_design_draws_the_numbered_picks_and_refuses_what_is_not_a_design(files):
    import jaxlaws
    from jaxlaws.design import next_runs
    from jaxlaws.io import load_fit
    from jaxlaws.plot import plot_design

    saved = load_fit(files / "fit.json")
    runs = saved.data()
    res = jaxlaws.fit(
        "chinchilla", runs, columns={"N": "params", "D": "tokens"}, starts="init", init=saved.record["params"]
    )
    pool, targets = pd.read_csv(files / "pool.csv"), pd.read_csv(files / "big.csv")
    d = next_runs(res, pool, runs=runs, targets=targets, cost="6*N*D", budget=BUDGET, n=3)
    fig = plot_design(d, targets=targets, runs=runs)
    plane, spread = fig.axes[:2]
    assert plane.get_xlabel() == "params" and plane.get_ylabel() == "tokens"
    assert plane.get_xscale() == "log" and plane.get_yscale() == "log"
    numbers = [t.get_text() for t in plane.texts if t.get_gid() == "pick-number"]
    assert numbers == ["1", "2", "3"]
    (line,) = [ln for ln in spread.lines if ln.get_gid() == "uncertainty"]
    sd = np.sqrt([d.variance_before, *d.picks["variance"]])
    np.testing.assert_allclose(line.get_ydata(), sd)
    one = plot_design(d, x="params", y="cost", targets=targets)  # one input: the cost on y
    assert one.axes[0].get_ylabel() == "cost"
    with pytest.raises(TypeError, match="plot_design: design must be a Design"):
        plot_design(res)
    with pytest.raises(ValueError, match="plot_design: x='N' is not a numeric column of the candidates"):
        plot_design(d, x="N")
    with pytest.raises(ValueError, match="plot_design: targets has no column 'tokens'"):
        plot_design(d, targets=targets[["params"]])
