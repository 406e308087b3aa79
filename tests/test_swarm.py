"""Swarm tables as published: two tables joined on a run id (olmix, RegMix) or one table;
every mistake one line naming the file, the column, the run and the value."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import jaxlaws
from jaxlaws.cli import main
from jaxlaws.laws import MIXING_EXP, MixingExpParams, mixing_exp

TRUTH = MixingExpParams(c=np.array([1.5, 2.0]), t=np.array([[-2.0, -0.5, 0.3], [0.2, -1.5, -0.6]]))


def _tables(n=30, seed=0):
    rng = np.random.default_rng(seed)
    r = rng.dirichlet(np.ones(3), n)
    y = np.asarray(mixing_exp(TRUTH, r)) * np.exp(rng.normal(0, 0.005, (n, 2)))
    runs = [f"run{i:03d}" for i in range(n)]
    ratios = pd.DataFrame({"run": runs, "name": [f"swarm-{i}" for i in range(n)], "web": r[:, 0]})
    ratios["code"], ratios["books"] = r[:, 1], r[:, 2]
    metrics = pd.DataFrame({"run": runs, "name": ratios["name"], "bpb_a": y[:, 0], "bpb_b": y[:, 1]})
    return ratios, metrics.sample(frac=1.0, random_state=1).reset_index(drop=True)  # another order


def test_two_tables_are_joined_on_the_run_id_whatever_their_order():
    ratios, metrics = _tables()
    sw = jaxlaws.swarm.read(ratios, metrics)
    assert sw.on == "run" and sw.domains == ("web", "code", "books") and sw.metrics == ("bpb_a", "bpb_b")
    back = metrics.set_index("run").loc[sw.frame.index]
    np.testing.assert_array_equal(sw.values, back[["bpb_a", "bpb_b"]].to_numpy())
    assert list(sw.frame.index[:2]) == ["run000", "run001"]
    res = jaxlaws.fit(MIXING_EXP, sw, starts=16)
    r = sw.ratios
    np.testing.assert_allclose(mixing_exp(res.params, r), mixing_exp(TRUTH, r), rtol=0.01)
    assert res.columns["r"] == ["web", "code", "books"] and res.columns["target"] == ["bpb_a", "bpb_b"]


def test_a_single_table_and_a_written_pandas_index():
    ratios, metrics = _tables()
    one = ratios.merge(metrics, on=["run", "name"])
    one.insert(0, "Unnamed: 0", range(len(one)))
    sw = jaxlaws.swarm.read(table=one, domains=["web", "code", "books"], metric_columns="bpb_*", on="run")
    assert sw.metrics == ("bpb_a", "bpb_b") and len(sw) == 30
    with pytest.raises(ValueError, match="needs domains= and metric_columns="):
        jaxlaws.swarm.read(table=one)
    # two tables with a written index: the index is not a domain
    r2 = ratios.copy()
    r2.insert(0, "Unnamed: 0", range(len(r2)))
    assert jaxlaws.swarm.read(r2, metrics).domains == ("web", "code", "books")


def test_runs_missing_from_one_table_are_left_out_with_a_warning():
    ratios, metrics = _tables()
    with pytest.warns(UserWarning, match=r"2 run\(s\) of ratios are not in metrics"):
        sw = jaxlaws.swarm.read(ratios, metrics.iloc[2:])
    assert len(sw) == 28


def _err(ratios, metrics, **kw):
    with pytest.raises(ValueError) as err:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            jaxlaws.swarm.read(ratios, metrics, **kw)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_bad_swarms_are_one_line_naming_column_run_and_value():
    ratios, metrics = _tables()
    bad = ratios.copy()
    bad.loc[3, "web"] = -0.1
    assert "column 'web', run 'run003': proportion -0.1 is negative" in _err(bad, metrics)
    bad = ratios.copy()
    bad.loc[4, "code"] += 0.5
    assert "run 'run004': the proportions of 3 domains sum to" in _err(bad, metrics)
    bad = ratios.copy()
    bad.loc[5, "code"] += 0.001
    msg = _err(bad, metrics)
    assert "run 'run005'" in msg and "normalise=True" in msg
    sw = jaxlaws.swarm.read(bad, metrics, normalise=True)
    np.testing.assert_allclose(sw.ratios.sum(axis=1), 1.0, rtol=1e-15)
    bad = metrics.copy()
    bad["bpb_a"] = bad["bpb_a"].astype(object)
    bad.loc[bad["run"] == "run007", "bpb_a"] = "oops"
    assert "column 'bpb_a', run 'run007': 'oops' is not a number" in _err(ratios, bad)
    bad = metrics.copy()
    bad.loc[bad["run"] == "run008", "bpb_b"] = np.nan
    assert "column 'bpb_b', run 'run008': the value is missing" in _err(ratios, bad)
    dup = pd.concat([ratios, ratios.iloc[[0]]], ignore_index=True)
    assert "run id 'run000' appears twice (rows 2 and 32)" in _err(dup, metrics)
    assert "no run-id column 'id'" in _err(ratios, metrics, on="id")
    two = ratios.rename(columns={"run": "a", "name": "b"}), metrics.rename(columns={"run": "a", "name": "b"})
    assert "share columns ['a', 'b']: name the run-id column with on=" in _err(*two)
    assert len(jaxlaws.swarm.read(*two, on="a")) == 30
    zero = ratios.copy()
    zero["books"] = 0.0
    zero["code"] = 1.0 - zero["web"]
    assert "domain(s) ['books'] have proportion 0 in every run" in _err(zero, metrics)
    assert "no column 'wbe' for the domains (did you mean 'web'?)" in _err(
        ratios, metrics, domains=["wbe", "code"]
    )
    spaced = metrics.assign(run=metrics["run"] + " ")
    msg = _err(ratios, spaced)
    assert "no run id 'run' in common (" in msg and "'run017 '" in msg and "differ only in spaces" in msg
    as_numbers = ratios.assign(run=np.arange(30)), metrics.assign(run=metrics.index.astype(float))
    msg = _err(*as_numbers)
    assert "metrics: 0.0, 1.0, 2.0, ...)" in msg and "np.float64" not in msg
    assert "the same numbers written differently" in msg


def test_bookkeeping_columns_are_not_metrics_unless_named():
    ratios, metrics = _tables()
    metrics["tokens"] = np.linspace(1e9, 2e9, len(metrics))
    metrics["train_steps"] = 1000
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sw = jaxlaws.swarm.read(ratios, metrics)
    assert sw.metrics == ("bpb_a", "bpb_b")
    said = [str(w.message) for w in caught]
    assert len(said) == 2 and "column 'tokens' is bookkeeping" in said[0] and "'train_steps'" in said[1]
    assert jaxlaws.swarm.read(ratios, metrics, metric_columns=["bpb_a", "tokens"]).metrics == (
        "bpb_a",
        "tokens",
    )


def test_one_target_column_of_a_law_with_one_output_per_column(tmp_path, capsys, swarm_files):
    rp, mp = swarm_files
    out = tmp_path / "a.json"
    argv = ["fit", "--law", "mixing_exp", "--ratios", str(rp), "--metrics", str(mp), "--target", "bpb_a"]
    assert main([*argv, "--starts", "8", "--output", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["columns"]["target"] == ["bpb_a"] and np.shape(record["params"]["t"]) == (1, 3)
    capsys.readouterr()


def test_a_changed_swarm_file_is_named(tmp_path, capsys, swarm_files):
    rp, mp = swarm_files
    out = tmp_path / "mix.json"
    argv = ["fit", "--law", "mixing_exp", "--ratios", str(rp), "--metrics", str(mp), "--starts", "8"]
    assert main([*argv, "--output", str(out)]) == 0
    metrics = pd.read_csv(mp)
    metrics.loc[0, "bpb_a"] *= 1.01
    metrics.to_csv(mp, index=False)
    capsys.readouterr()
    assert main(["plot", str(out), "--output", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err
    assert f"{mp} changed since the fit" in err and str(rp) not in err, err


def test_an_unknown_bundled_swarm_is_named():
    with pytest.raises(ValueError, match="unknown swarm 'nope'"):
        jaxlaws.swarm.load("nope")


@pytest.fixture
def swarm_files(tmp_path):
    """The swarm of ``_tables`` as two CSV files: ``(ratios, metrics)``."""
    ratios, metrics = _tables()
    rp, mp = tmp_path / "ratios.csv", tmp_path / "metrics.csv"
    ratios.to_csv(rp, index=False)
    metrics.to_csv(mp, index=False)
    return rp, mp


def test_cli_fits_a_swarm_from_two_files_and_proposes(tmp_path, capsys, swarm_files):
    rp, mp = swarm_files
    out = tmp_path / "mix.json"
    argv = ["fit", "--law", "mixing_exp", "--ratios", str(rp), "--metrics", str(mp), "--starts", "16"]
    assert main([*argv, "--output", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["swarm"]["on"] == "run" and record["columns"]["r"] == ["web", "code", "books"]
    saved = jaxlaws.io.load_fit(out)
    assert len(saved.data()) == 30  # the saved fit finds its two files again
    csv = tmp_path / "prop.csv"
    code = main(
        [
            "propose",
            str(out),
            "--budgets",
            "1e9,1e10",
            "--unique",
            "web=1e8,*=1e11",
            "--max-epochs",
            "4",
            "--output",
            str(csv),
            "--plot",
            str(tmp_path / "prop"),
        ]
    )
    assert code == 0
    table = pd.read_csv(csv)
    assert np.all(table["epochs_web"] <= 4 + 1e-9)
    assert (tmp_path / "prop.png").exists()
    assert main(["plot", str(out), "--domain", "code", "--output", str(tmp_path / "resp.png")]) == 0
    capsys.readouterr()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--on", "id"], "has no run-id column 'id'"),
        (["--domains", "web+cod"], "no column 'cod' for the domains"),
        (["--data", "{rp}"], "give exactly one of --dataset NAME, --data FILE"),
        (["--group-by", "name"], "--group-by is for --data tables"),
    ],
)
def test_cli_swarm_mistakes_are_one_line(capsys, swarm_files, extra, message):
    rp, mp = swarm_files
    extra = [e.replace("{rp}", str(rp)) for e in extra]
    code = main(["fit", "--law", "mixing_exp", "--ratios", str(rp), "--metrics", str(mp), *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1, err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--unique", "wbe=1e8,*=1e9", "--budgets", "1e9", "--max-epochs", "4"], "'wbe' is not a domain"),
        (
            ["--unique", "web=1e8", "--budgets", "1e9", "--max-epochs", "4"],
            "has no value for ['code', 'books']",
        ),
        (
            ["--unique", "1,2", "--budgets", "1e9", "--max-epochs", "4"],
            "--unique has 2 values; the mixture has 3",
        ),
        (["--max-epochs", "4"], "budgets (training tokens) are needed for repetition='cap'"),
        (["--max-epochs", "4", "--budgets", "1e9"], "needs unique_tokens"),
        (["--kl", "-1"], "kl must be a non-negative number"),
        (["--at", "N"], "--at expects NAME=VALUE pairs"),
        (["--bootstrap", "1"], "--bootstrap needs at least 2"),
        (["--unique", "web=1e8,web=1e11,*=1e9", "--budgets", "1e9"], "--unique gives 'web' twice"),
        (["--budgets", ""], "--budgets is empty"),
        (["--metric-weights", "0,0"], "not all zero"),
        (["--output", "{ratios}"], "is a file this command reads"),
        (["--plot", "{metrics}"], "is a file this command reads"),
    ],
)
def test_cli_propose_mistakes_are_one_line(tmp_path, capsys, swarm_files, extra, message):
    rp, mp = swarm_files
    out = tmp_path / "mix.json"
    assert (
        main(["fit", "--law", "mixing_exp", "--ratios", str(rp), "--metrics", str(mp), "--output", str(out)])
        == 0
    )
    capsys.readouterr()
    extra = [e.replace("{ratios}", str(rp)).replace("{metrics}", str(mp)) for e in extra]
    code = main(["propose", str(out), *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1, err


def test_propose_refuses_a_fit_of_a_law_without_a_mixture(tmp_path, capsys):
    out = tmp_path / "c.json"
    assert main(["fit", "--dataset", "chinchilla-epoch", "--output", str(out)]) == 0
    capsys.readouterr()
    assert main(["propose", str(out)]) == 2
    assert "propose needs a fit of a mixture law" in capsys.readouterr().err
