"""The command line: the README's main job, and one-line errors for user mistakes."""

import json
import os

import pytest
from synthetic import chinchilla_groups

from jaxlaws.cli import main


def test_fit_bundled_dataset_prints_and_saves(tmp_path, capsys):
    out = tmp_path / "fit.json"
    assert main(["fit", "--dataset", "chinchilla-epoch", "--law", "chinchilla", "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "240 rows" in text and "objective value 1.0182740178e-03" in text
    record = json.loads(out.read_text())
    assert record["value"] == pytest.approx(1.01827403e-3, abs=1e-9)
    assert record["n_starts"] == 4500 and record["law"] == "chinchilla"
    assert set(record["params"]) == {"E", "A", "B", "alpha", "beta"}
    assert len(record["data_sha256"]) == 64 and "jax" in record["versions"]


def test_datasets_lists_the_bundled_tables(capsys):
    assert main(["datasets"]) == 0
    text = capsys.readouterr().out
    assert "chinchilla-epoch" in text and "datablations-c4" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fit", "--dataset", "chinchila"], "unknown dataset 'chinchila'"),
        (["fit", "--dataset", "chinchilla-epoch", "--law", "kaplan"], "unknown law 'kaplan'"),
        (["fit", "--data", "/nonexistent.csv", "--law", "chinchilla"], "no such file: /nonexistent.csv"),
        (["fit", "--dataset", "chinchilla-epoch", "--starts", "lots"], "--starts must be"),
        (["fit", "--dataset", "chinchilla-epoch", "--coordinator", "h:1"], "give --group-by"),
        (
            [
                "fit",
                "--dataset",
                "chinchilla-epoch",
                "--group-by",
                "N",
                "--output",
                "o",
                "--coordinator",
                "h:1",
            ],
            "give all of --coordinator HOST:PORT, --num-processes P and --process-id I",
        ),
        (["fit", "--dataset", "chinchilla-epoch", "--devices", "0"], "--devices must be at least 1"),
        (
            ["fit", "--dataset", "chinchilla-epoch", "--group-by", "N", "--output", "o", "--distributed"],
            "could not join the distributed job",
        ),
    ],
)
def test_user_mistakes_are_one_line_errors(argv, message, capsys, monkeypatch):
    for var in [v for v in os.environ if v.startswith(("SLURM_", "OMPI_"))]:
        monkeypatch.delenv(var)  # --distributed must find no cluster, even on a cluster
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxlaws: error:") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bad_rows_in_a_csv_are_named(tmp_path, capsys):
    csv = tmp_path / "runs.csv"
    csv.write_text("params,tokens,loss\n1e9,2e10,3.1\n2e9,oops,2.9\n")
    assert main(["fit", "--data", str(csv), "--law", "chinchilla", "--columns", "N=params,D=tokens"]) == 2
    # rows are named by their line in the file: the header is line 1
    assert "column 'tokens', row 3: 'oops' is not a number" in capsys.readouterr().err


def test_a_killed_batch_job_restarts_where_it_stopped(tmp_path):
    """1000 groups; kill the job after some chunks, restart: every group fitted exactly once."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from jaxlaws.batch import read_results

    csv, out = tmp_path / "runs.csv", tmp_path / "fits.jsonl"
    chinchilla_groups(1000).to_csv(csv, index=False)
    cmd = [sys.executable, "-m", "jaxlaws", "fit", "--data", str(csv), "--law", "chinchilla"]
    cmd += ["--group-by", "run", "--starts", "16", "--chunk", "50", "--output", str(out)]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 240
    while time.time() < deadline:
        if out.exists() and out.read_text().count("\n") >= 100:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = len(read_results(out))
    assert 100 <= first < 1000, first  # killed part way
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    results = read_results(out)
    assert len(results) == 1000
    assert sorted(results.group) == list(range(1000))  # each group exactly once
    # real fits: 95-96% of these 8-run groups converge from 16 random starts (958 and 950 of
    # 1000 with LAPACK's and the written-out Cholesky); the rest stop on a flat ridge
    assert (results.status == "converged").mean() > 0.9
    assert results.value.median() < 2e-5  # the noise floor: 8 runs at 0.5% noise


def test_saved_fit_reproduces_predictions_and_plots(tmp_path, capsys):
    import numpy as np
    from matplotlib.image import imread

    import jaxlaws
    from jaxlaws.io import load_fit

    out, png = tmp_path / "fit.json", tmp_path / "fit.png"
    assert main(["fit", "--dataset", "chinchilla-epoch", "--law", "chinchilla", "--output", str(out)]) == 0
    saved = load_fit(out)
    df = saved.data()  # found again from the record, hash checked
    refit = jaxlaws.fit("chinchilla", df)
    np.testing.assert_allclose(saved.predict(df), refit.predict(df), rtol=1e-12)
    assert main(["plot", str(out), "--output", str(png)]) == 0
    image = imread(png)
    assert image.shape[0] > 400 and image.shape[1] > 400


def test_plot_fit_contains_what_it_claims():
    import numpy as np

    import jaxlaws
    from jaxlaws.plot import plot_fit

    df = jaxlaws.datasets.load("chinchilla-epoch", subset="standard")
    params = jaxlaws.laws.ChinchillaParams(1.8172, 477.84, 2143.9, 0.3473, 0.3672)
    fig = plot_fit(jaxlaws.laws.CHINCHILLA, params, df)
    top, bottom = fig.axes[:2]
    legend = [t.get_text() for t in top.get_legend().get_texts()]
    assert legend[:2] == ["runs", "chinchilla fit per model size"] and "compute-optimal" in legend
    assert len(top.collections) == 1 and len(top.collections[0].get_offsets()) == 240
    curves = [line for line in top.get_lines() if line.get_gid() == "fit-curve"]
    sizes = np.sort(df["N"].unique())  # sizes within 0.1% are one model size (read off a figure)
    assert len(curves) == 1 + int(np.sum(sizes[1:] / sizes[:-1] > 1.001)) == 43
    assert top.get_xscale() == top.get_yscale() == "log"
    assert bottom.get_xlabel().startswith("compute") and len(bottom.collections[0].get_offsets()) == 240


def test_allocate_and_mix_from_saved_fits(tmp_path, capsys):
    import json

    import pandas as pd

    from jaxlaws import laws

    # a saved data-constrained fit at the published constants (stage 2 from the paper's grid)
    fit = tmp_path / "dc.json"
    init = json.dumps({k: float(v) for k, v in laws.MUENNIGHOFF_C4._asdict().items()})
    argv = ["fit", "--dataset", "datablations-c4", "--law", "data_constrained", "--init", init]
    assert main(argv + ["--frozen", "E,A,B,alpha,beta", "--output", str(fit)]) == 0
    table = tmp_path / "alloc.csv"
    assert (
        main(["allocate", str(fit), "--compute", "1e21:1e23:3", "--unique", "25e9", "--output", str(table)])
        == 0
    )
    alloc = pd.read_csv(table)
    assert list(alloc.C) == [1e21, 1e22, 1e23] and alloc.converged.all()
    # mixture weights from a saved pools fit
    pools = tmp_path / "pools.json"
    record = {
        "law": "filtering_mixture",
        "params": {"b": [-0.18, -0.15], "tau": [4.36, 4.27], "n0": 1e5 / 0.022, "d": 0.1},
    }
    pools.write_text(json.dumps(record))
    out, png = tmp_path / "mix.csv", tmp_path / "pareto.png"
    assert (
        main(
            [
                "mix",
                str(pools),
                "--sizes",
                "12.8e6,12.8e6",
                "--budgets",
                "16e6:1e9:4",
                "--names",
                "a,b",
                "--output",
                str(out),
                "--plot",
                str(png),
                "--devices",
                "1",
            ]
        )
        == 0
    )
    mix = pd.read_csv(out)
    assert list(mix.columns[:3]) == ["n", "w_a", "w_b"] and len(mix) == 4 and png.stat().st_size > 0
    assert (mix.error <= mix.best_topk_error + 1e-12).all()
    capsys.readouterr()
    assert main(["mix", str(pools), "--sizes", "12.8e6", "--budgets", "1e8"]) == 2
    assert "--sizes has 1 pools; the fit has 2" in capsys.readouterr().err


def test_propose_takes_a_pools_fit_from_a_long_table(tmp_path, capsys):
    """The one mixture engine from the command line: a pools fit proposes with the pools'
    labels, their sizes read from the fit's table, and a cap on passes."""
    import pandas as pd
    from test_fit_filtering import synthetic_pools

    runs, fit, out = tmp_path / "pools.csv", tmp_path / "pools.json", tmp_path / "prop.csv"
    synthetic_pools().to_csv(runs, index=False)
    argv = ["fit", "--data", str(runs), "--law", "filtering_mixture", "--objective", "sse", "--starts", "16"]
    assert main(argv + ["--output", str(fit)]) == 0
    caps = ["--budgets", "1e8,2e9", "--max-epochs", "40"]
    assert main(["propose", str(fit), *caps, "--output", str(out)]) == 0
    prop = pd.read_csv(out)
    assert list(prop.columns[2:6]) == ["w_top10", "w_top10-20", "w_top20-30", "w_top30-40"]
    assert (prop.status == "converged").all() and prop.epochs_top10.max() <= 40 + 1e-9
    assert "top10:cap" in prop.bound.iloc[1] and {"best_k", "gain_over_topk"} <= set(prop.columns)


MIXING_LAW_FILE = '''
"""A user's law: Ye et al.'s exp-linear data-mixing law, identifiable form."""
from typing import Any, NamedTuple

import jax.numpy as jnp

import jaxlaws
from jaxlaws import constraints as C


class MixingParams(NamedTuple):
    c: Any
    t: Any


MIXING = jaxlaws.Law(
    name="mixing_exp",
    fn=lambda p, r: p.c + jnp.exp(r @ p.t.T),
    params=MixingParams,
    inputs=("r",),
    target="loss",
    domains={"r": "simplex"},
    shapes={"c": ("outputs",), "t": ("outputs", "r")},
    constraints=MixingParams(c=C.positive.within(0.5, 5.0), t=C.real.within(-10.0, 5.0)),
)
'''


def _mixing_files(tmp_path):
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "benchmarks"))
    import suite

    laws_py, csv = tmp_path / "mylaws.py", tmp_path / "swarm.csv"
    laws_py.write_text(MIXING_LAW_FILE)
    suite.mixing_data().to_csv(csv, index=False)
    return laws_py, csv


def test_a_users_mixing_law_with_five_outputs_fits_from_the_command_line(tmp_path, capsys):
    import numpy as np
    import pandas as pd

    from jaxlaws.io import load_fit

    laws_py, csv = _mixing_files(tmp_path)
    out = tmp_path / "mix.json"
    argv = ["fit", "--data", str(csv), "--law", f"{laws_py}:MIXING", "--columns", "r=r_*"]
    argv += ["--target", "loss_*", "--starts", "8", "--output", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "40 rows" in text and "status converged" in text
    saved = load_fit(out)  # the law is found again from its file
    assert np.shape(saved.params.t) == (5, 5)
    pred = saved.predict(pd.read_csv(csv))
    assert pred.shape == (40, 5)
    assert json.loads(out.read_text())["columns"]["target"][0] == "loss_academic"


@pytest.mark.parametrize(
    "law, message",
    [
        ("nofile.py:MIXING", "no such file for the law 'nofile.py:MIXING'"),
        ("{laws}:NOPE", "has no 'NOPE'; the laws in it: ['MIXING']"),
        ("{laws}:MixingParams", "is a type, not a jaxlaws.Law"),
        ("{dir}:MIXING", "is a directory: give the Python file that defines the law"),
        ("{csv}:MIXING", "is not a Python file: a user's law is FILE.py:NAME"),
        ("nomodule:MIXING", "No module named 'nomodule' (a user's law is FILE.py:NAME or module:NAME)"),
    ],
)
def test_a_users_law_that_cannot_be_loaded_is_one_line(tmp_path, capsys, law, message):
    laws_py, csv = _mixing_files(tmp_path)
    argv = [
        "fit",
        "--data",
        str(csv),
        "--law",
        law.format(laws=laws_py, dir=tmp_path, csv=csv),
        "--columns",
        "r=r_*",
        "--target",
        "loss_*",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_the_compilation_cache_is_kept_where_asked_and_off_when_asked(tmp_path):
    import subprocess
    import sys

    cache = tmp_path / "cache"
    cmd = [sys.executable, "-m", "jaxlaws", "--cache-dir", str(cache), "fit", "--dataset", "chinchilla-epoch"]
    cmd += ["--starts", "8"]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr
    kept = sorted(p.name for p in cache.iterdir())
    assert any("program" in name for name in kept), kept  # the solver
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0 and again.stdout == first.stdout  # same fit from the cache
    off = tmp_path / "off"
    env_off = {**env, "JAXLAWS_CACHE_DIR": "off"}
    cmd_off = [sys.executable, "-m", "jaxlaws", "fit", "--dataset", "chinchilla-epoch", "--starts", "8"]
    assert (
        subprocess.run(cmd_off, capture_output=True, env=env_off, cwd=tmp_path, timeout=300).returncode == 0
    )
    moved = {**env, "JAXLAWS_CACHE_DIR": str(off)}
    assert (
        subprocess.run(cmd_off + ["--seed", "1"], capture_output=True, env=moved, timeout=300).returncode == 0
    )
    assert any(off.iterdir())  # the variable moves it


def test_an_unusable_cache_directory_is_a_warning_line(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["--cache-dir", str(blocker / "xla"), "datasets"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("jaxlaws: warning: the compilation cache is off:") and err.count("\n") == 1


def test_an_output_interrupted_while_written_leaves_the_old_file_whole(tmp_path, monkeypatch):
    """The fit's JSON is written to a temporary file beside it and moved into place: an error
    (or a kill) halfway through the write leaves the previous fit.json as it was."""
    out = tmp_path / "fit.json"
    assert main(["fit", "--dataset", "chinchilla-epoch", "--law", "chinchilla", "--output", str(out)]) == 0
    before = out.read_bytes()

    def half_then_fail(obj, fh, **kw):
        fh.write(json.dumps(obj)[:100])
        raise KeyboardInterrupt  # as a user's Ctrl-C halfway through the write

    monkeypatch.setattr(json, "dump", half_then_fail)
    argv = ["fit", "--dataset", "chinchilla-epoch", "--law", "chinchilla", "--starts", "8"]
    assert main(argv + ["--output", str(out)]) == 130  # interrupted: exit status 128 + SIGINT
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.json"]  # no temporary file left


def test_predictions_and_allocations_with_intervals_from_kept_samples(tmp_path, capsys):
    """fit --bootstrap N --keep-samples; predict and allocate then give intervals: the
    percentiles of the law under the kept samples."""
    import numpy as np
    import pandas as pd

    import jaxlaws

    runs = tmp_path / "runs.csv"
    chinchilla_groups(3, by="g").to_csv(runs, index=False)
    fit_json, pred, alloc = (tmp_path / n for n in ("fit.json", "pred.csv", "alloc.csv"))
    argv = ["fit", "--data", str(runs), "--law", "chinchilla", "--starts", "8", "--bootstrap", "30"]
    assert main(argv + ["--keep-samples", "--output", str(fit_json)]) == 0
    saved = jaxlaws.io.load_fit(fit_json)
    assert saved.samples is not None and np.shape(saved.samples.alpha) == (
        30 - saved.record["bootstrap"]["n_failed"],
    )
    at = ["--at", "N=70e9,D=1.4e12", "--at", "N=1e9,D=2e10"]
    assert main(["predict", str(fit_json), *at, "--level", "0.8", "--output", str(pred)]) == 0
    table = pd.read_csv(pred)
    points = pd.DataFrame({"N": [70e9, 1e9], "D": [1.4e12, 2e10]})
    each = np.asarray(
        jaxlaws.laws.chinchilla(saved.samples, points.N.to_numpy()[:, None], points.D.to_numpy()[:, None])
    )
    np.testing.assert_allclose(table["pred_loss_lo80"], np.percentile(each.T, 10, axis=0), rtol=1e-12)
    np.testing.assert_allclose(table["pred_loss_hi80"], np.percentile(each.T, 90, axis=0), rtol=1e-12)
    np.testing.assert_allclose(table["pred_loss"], saved.predict(points), rtol=1e-12)
    assert main(["allocate", str(fit_json), "--compute", "1e21,1e23", "--output", str(alloc)]) == 0
    a = pd.read_csv(alloc)
    assert "epochs" not in a.columns  # chinchilla: no unique-token budget, no epoch columns
    assert (
        (a["N_lo90"] <= a["N"]).all() and (a["N"] <= a["N_hi90"]).all() and (a["N_lo90"] < a["N_hi90"]).all()
    )
    png = tmp_path / "band.png"
    assert main(["plot", str(fit_json), "--extrapolate", "N=70e9,D=1.4e12", "--output", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    plain = tmp_path / "plain.json"
    assert (
        main(["fit", "--data", str(runs), "--law", "chinchilla", "--starts", "8", "--output", str(plain)])
        == 0
    )
    capsys.readouterr()
    assert main(["predict", str(plain), "--at", "N=1e9,D=2e10"]) == 0
    captured = capsys.readouterr()
    assert "pred_loss" in captured.out and "no intervals" in captured.err
    assert main(["predict", str(plain)]) == 2  # neither --data nor --at
    assert main(["fit", "--data", str(runs), "--law", "chinchilla", "--keep-samples"]) == 2
