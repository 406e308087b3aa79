"""Every bad input is one line: through the command line (exit status 2, one line on stderr,
no traceback, no output file) and through the Python API (one ``ValueError`` line).

Each case would otherwise have given a traceback, a hang, an unclear line or a wrong result
with exit status 0 (the defects of issue 12)."""

import json
import warnings

import jax.numpy as jnp
import numpy as np
import pytest
from synthetic import chinchilla_groups

import jaxlaws
from jaxlaws.cli import main

GOOD = chinchilla_groups(2, by="g")  # 16 rows, columns g, N, D, loss


def _fill(text, files):
    """``{name}`` replaced by the path of that fixture file (other braces kept)."""
    for key, path in files.items():
        text = text.replace("{" + key + "}", path)
    return text


def _csv(tmp, name, text):
    path = tmp / name
    path.write_text(text)
    return str(path)


@pytest.fixture
def files(tmp_path):
    """A good table, bad tables and saved fits (written by hand: no fitting needed)."""
    f = {"out": str(tmp_path / "out.json"), "jsonl": str(tmp_path / "out.jsonl"), "dir": str(tmp_path)}
    f["runs"] = str(tmp_path / "runs.csv")
    GOOD.to_csv(f["runs"], index=False)
    f["header_only"] = _csv(tmp_path, "header.csv", "N,D,loss\n")
    f["empty"] = _csv(tmp_path, "empty.csv", "")
    f["duplicate"] = _csv(tmp_path, "dup.csv", "N,D,loss,loss\n1e9,2e10,3.1,3.2\n")
    f["nan"] = _csv(tmp_path, "nan.csv", "N,D,loss\n1e9,2e10,3.1\n2e9,4e10,\n")
    f["zero"] = _csv(tmp_path, "zero.csv", "N,D,loss\n1e9,2e10,3.1\n0,4e10,2.9\n")
    f["few"] = _csv(tmp_path, "few.csv", "N,D,loss\n1e9,2e10,3.1\n2e9,4e10,2.9\n")
    constant = GOOD.assign(loss=2.5)
    f["constant"] = str(tmp_path / "constant.csv")
    constant.to_csv(f["constant"], index=False)
    unlabelled = GOOD.assign(g=np.nan)
    f["unlabelled"] = str(tmp_path / "unlabelled.csv")
    unlabelled.to_csv(f["unlabelled"], index=False)
    f["blank_then_nan"] = _csv(tmp_path, "blank.csv", "N,D,loss\n1e9,2e10,3.1\n\n2e9,oops,2.9\n")
    chin = {"law": "chinchilla", "params": {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}}
    f["fit"] = str(tmp_path / "fit.json")
    (tmp_path / "fit.json").write_text(json.dumps(chin))
    f["pngfit"] = str(tmp_path / "fit.png")  # a saved fit with an unlucky name
    (tmp_path / "fit.png").write_text(json.dumps(chin))
    f["truncated"] = str(tmp_path / "truncated.json")
    (tmp_path / "truncated.json").write_text(json.dumps(chin)[:40])
    f["list"] = str(tmp_path / "list.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    neg = {"law": "chinchilla", "params": {**chin["params"], "alpha": -0.3}}
    f["negative_alpha"] = str(tmp_path / "neg.json")
    (tmp_path / "neg.json").write_text(json.dumps(neg))
    fig4 = jaxlaws.laws.GOYAL_FIG4
    mix = {
        "law": "filtering_mixture",
        "params": {k: np.asarray(v).tolist() for k, v in fig4._asdict().items()},
    }
    f["mix"] = str(tmp_path / "mix.json")
    (tmp_path / "mix.json").write_text(json.dumps(mix))
    ragged = json.loads(json.dumps(mix))
    ragged["params"]["tau"] = ragged["params"]["tau"][:3]
    f["ragged"] = str(tmp_path / "ragged.json")
    (tmp_path / "ragged.json").write_text(json.dumps(ragged))
    nanfit = json.loads(json.dumps(chin))
    nanfit["params"]["E"] = float("nan")
    f["nanfit"] = str(tmp_path / "nanfit.json")
    (tmp_path / "nanfit.json").write_text(json.dumps(nanfit))
    f["fit_data"] = str(tmp_path / "fit_data.json")
    (tmp_path / "fit_data.json").write_text(json.dumps({**chin, "data_path": f["runs"]}))
    f["five"] = str(tmp_path / "five.csv")
    GOOD.head(5).to_csv(f["five"], index=False)
    f["jsonlines"] = str(tmp_path / "results.jsonl")
    (tmp_path / "results.jsonl").write_text(json.dumps(chin) + "\n" + json.dumps(chin) + "\n")
    f["pretty"] = str(tmp_path / "pretty.json")
    (tmp_path / "pretty.json").write_text(json.dumps(chin, indent=2))
    f["flags"] = str(tmp_path / "flags.csv")
    GOOD.assign(N=GOOD.N > 1e8).to_csv(f["flags"], index=False)
    f["law"] = str(tmp_path / "mylaw.py")
    (tmp_path / "mylaw.py").write_text(
        "import jaxlaws, jax.numpy as jnp\nfrom typing import NamedTuple\n"
        "class P(NamedTuple):\n    E: float\n    A: float\n"
        "BROKEN = jaxlaws.Law(name='broken', fn=lambda p, N: p.E + p.Z / N, params=P, inputs=('N',),"
        " target='loss', constraints=P(E=jaxlaws.constraints.positive, A=jaxlaws.constraints.positive))\n"
    )
    negtau = json.loads(json.dumps(mix))
    negtau["params"]["tau"][1] = -2.0
    f["negtau"] = str(tmp_path / "negtau.json")
    (tmp_path / "negtau.json").write_text(json.dumps(negtau))
    return f


FIT = ["fit", "--data", "{runs}", "--law", "chinchilla", "--output", "{out}"]
GROUPS = ["fit", "--data", "{runs}", "--law", "chinchilla", "--group-by", "g", "--output", "{jsonl}"]
MIX = ["mix", "{mix}", "--sizes", "1e7,1e7,1e7,1e7", "--budgets", "1e8,1e9"]

# (case, argv, a fragment of the one-line message)
CLI_CASES = [
    ("delta zero", FIT + ["--delta", "0"], "--delta must be a positive number"),
    ("delta negative", FIT + ["--delta", "-1"], "--delta must be a positive number"),
    ("delta nan", FIT + ["--delta", "nan"], "--delta must be a positive number"),
    ("delta not a number", FIT + ["--delta", "abc"], "argument --delta: invalid float value"),
    ("bootstrap zero", FIT + ["--bootstrap", "0"], "--bootstrap needs at least 2"),
    ("bootstrap one", FIT + ["--bootstrap", "1"], "--bootstrap needs at least 2"),
    ("bootstrap negative", FIT + ["--bootstrap", "-5"], "--bootstrap needs at least 2"),
    ("seed negative", FIT + ["--seed", "-1"], "--seed must be a whole number >= 0"),
    ("starts zero", FIT + ["--starts", "0"], "--starts must be"),
    ("starts negative", FIT + ["--starts", "-3"], "--starts must be"),
    ("chunk zero", GROUPS + ["--chunk", "0"], "--chunk must be at least 1"),
    ("devices zero", FIT + ["--devices", "0"], "--devices must be at least 1"),
    ("unknown flag", FIT + ["--colums", "N=x"], "unrecognized arguments: --colums"),
    ("no subcommand", [], "the following arguments are required"),
    ("header only", ["fit", "--data", "{header_only}", "--law", "chinchilla"], "has a header but no rows"),
    ("empty file", ["fit", "--data", "{empty}", "--law", "chinchilla"], "is empty"),
    ("data is a directory", ["fit", "--data", "{dir}", "--law", "chinchilla"], "is a directory"),
    ("output is a directory", FIT[:-1] + ["{dir}"], "--output {dir} is a directory"),
    ("output in no directory", FIT[:-1] + ["{dir}/no/such/fit.json"], "does not exist"),
    ("init a list", FIT + ["--init", "[1,2]"], "--init must be a JSON object"),
    ("init not JSON", FIT + ["--init", "{E: 1"], "--init is not valid JSON"),
    ("init unknown name", FIT + ["--init", '{"F": 1.0}'], "'F'"),
    (
        "frozen unknown",
        FIT + ["--init", json.dumps(dict(E=1.8, A=480, B=2100, alpha=0.35, beta=0.37)), "--frozen", "Q"],
        "frozen names ['Q']",
    ),
    ("frozen without init", FIT + ["--frozen", "E"], "needs init="),
    (
        "duplicate columns",
        ["fit", "--data", "{duplicate}", "--law", "chinchilla"],
        "two columns named 'loss'",
    ),
    ("NaN in a column", ["fit", "--data", "{nan}", "--law", "chinchilla"], "row 3"),
    ("non-positive size", ["fit", "--data", "{zero}", "--law", "chinchilla"], "column 'N', row 3"),
    ("row after a blank line", ["fit", "--data", "{blank_then_nan}", "--law", "chinchilla"], "row 4: 'oops'"),
    ("fewer rows than parameters", ["fit", "--data", "{few}", "--law", "chinchilla"], "cannot determine 5"),
    ("constant target", ["fit", "--data", "{constant}", "--law", "chinchilla"], "is constant"),
    ("unknown law", ["fit", "--data", "{runs}", "--law", "chinchila"], "unknown law 'chinchila'"),
    ("misspelt column", FIT + ["--columns", "N=parms"], "missing column 'parms'"),
    ("unknown objective", FIT + ["--objective", "hubber"], "hubber"),
    ("group-by missing column", GROUPS[:6] + ["gg"] + GROUPS[7:], "--group-by column 'gg'"),
    ("group-by without output", GROUPS[:7], "--group-by needs --output"),
    ("every label empty", GROUPS[:2] + ["{unlabelled}"] + GROUPS[3:], "every row has an empty 'g' label"),
    ("bootstrap with group-by", GROUPS + ["--bootstrap", "10"], "--bootstrap with --group-by"),
    ("truncated fit", ["allocate", "{truncated}", "--compute", "1e21"], "truncated.json is not a readable"),
    ("fit is a list", ["allocate", "{list}", "--compute", "1e21"], "list.json is not a saved fit"),
    ("plot truncated fit", ["plot", "{truncated}"], "truncated.json is not a readable"),
    ("compute nan", ["allocate", "{fit}", "--compute", "nan"], "--compute must be finite and positive"),
    ("compute inf", ["allocate", "{fit}", "--compute", "inf"], "--compute must be finite and positive"),
    ("compute zero", ["allocate", "{fit}", "--compute", "0,1e21"], "--compute must be finite and positive"),
    ("compute malformed range", ["allocate", "{fit}", "--compute", "1e20:1e22"], "lo:hi:count"),
    (
        "unique wrong count",
        ["allocate", "{fit}", "--compute", "1e21,1e22,1e23", "--unique", "1e9,2e9"],
        "--unique",
    ),
    ("alpha negative", ["allocate", "{negative_alpha}", "--compute", "1e21"], "alpha must be positive"),
    (
        "unique for chinchilla",
        ["allocate", "{fit}", "--compute", "1e21", "--unique", "1e9"],
        "data_constrained",
    ),
    (
        "mix on a chinchilla fit",
        ["mix", "{fit}", "--sizes", "1", "--budgets", "1e9"],
        "needs a filtering_mixture",
    ),
    (
        "mix negative size",
        ["mix", "{mix}", "--sizes", "1e7,-1e7,1e7,1e7", "--budgets", "1e9"],
        "--sizes must",
    ),
    ("mix infinite size", ["mix", "{mix}", "--sizes", "1e7,inf,1e7,1e7", "--budgets", "1e9"], "--sizes must"),
    (
        "mix wrong pool count",
        ["mix", "{mix}", "--sizes", "1e7,1e7", "--budgets", "1e9"],
        "--sizes has 2 pools",
    ),
    ("mix zero budget", MIX[:-1] + ["0,1e9"], "--budgets must be finite and positive"),
    ("mix names wrong length", MIX + ["--names", "a,b"], "--names has 2 names"),
    ("mix ragged tau", ["mix", "{ragged}"] + MIX[2:], "tau has 3 pools' values"),
    ("mix negative tau", ["mix", "{negtau}"] + MIX[2:], "tau (half-life in passes) must be positive"),
    ("mix output is a directory", MIX + ["--output", "{dir}"], "is a directory"),
    ("output is the data file", FIT[:-1] + ["{runs}"], "is a file this command reads"),
    ("allocate output is the fit", ["allocate", "{fit}", "--compute", "1e21", "--output", "{fit}"], "reads"),
    ("plot output is the fit", ["plot", "{fit}", "--output", "{fit}"], "is a file this command reads"),
    ("plot default output is the fit", ["plot", "{pngfit}"], "is a file this command reads"),
    ("mix plot is the output", MIX + ["--plot", "{dir}/t.png", "--output", "{dir}/t.png"], "the same file"),
    ("mix plot empty", MIX + ["--plot", ""], "--plot is empty"),
    (
        "mix budgets far below the pools",
        MIX[:-1] + ["1,1e3"],
        "at a budget of 1: the budget is too far below",
    ),
    ("batch output is a saved fit", GROUPS[:-1] + ["{pretty}"], "is not the output of a batch job"),
    ("mix names repeated", MIX + ["--names", "a,a,b,c"], "distinct, non-empty names"),
    ("mix names empty", MIX + ["--names", "a,,b,c"], "distinct, non-empty names"),
    ("columns key twice", FIT + ["--columns", "N=N,N=D"], "--columns names 'N' twice"),
    ("columns empty name", FIT + ["--columns", "N="], "--columns N=: empty column name"),
    ("group-by empty", GROUPS[:6] + [""] + GROUPS[7:], "--group-by is empty"),
    ("target empty", FIT + ["--target", ""], "--target is empty"),
    ("init empty", FIT + ["--init", " "], "--init is empty"),
    ("output empty", FIT[:-1] + [""], "--output is empty"),
    ("subset with data", FIT + ["--subset", "standard"], "--subset selects rows of a bundled --dataset"),
    ("chunk without group-by", FIT + ["--chunk", "8"], "--chunk sets groups per batched call"),
    ("compute empty item", ["allocate", "{fit}", "--compute", "1e20,,1e21"], "--compute has an empty item"),
    ("compute negative", ["allocate", "{fit}", "--compute", "-1e22"], "needs '=', as in --compute=-1"),
    (
        "init a boolean",
        FIT + ["--starts", "init", "--init", '{"E": true, "A": 1, "B": 1, "alpha": 0.3, "beta": 0.3}'],
        "must be a number",
    ),
    (
        "init text",
        FIT + ["--starts", "init", "--init", '{"E": "abc", "A": 1, "B": 1, "alpha": 0.3, "beta": 0.3}'],
        "parameter E",
    ),
    (
        "init outside its constraint",
        FIT + ["--starts", "init", "--init", '{"E": -1, "A": 1, "B": 1, "alpha": 0.3, "beta": 0.3}'],
        "init E = -1.0 is outside its constraint",
    ),
    (
        "init NaN",
        FIT + ["--starts", "init", "--init", '{"E": NaN, "A": 1, "B": 1, "alpha": 0.3, "beta": 0.3}'],
        "parameter E of law 'chinchilla' is not finite",
    ),
    (
        "every parameter frozen",
        FIT
        + ["--init", '{"E": 1, "A": 1, "B": 1, "alpha": 0.3, "beta": 0.3}', "--frozen", "E,A,B,alpha,beta"],
        "every parameter of 'chinchilla' is frozen",
    ),
    ("starts init without init", FIT + ["--starts", "init"], "--init on the command line"),
    (
        "a boolean column",
        ["fit", "--data", "{flags}", "--law", "chinchilla"],
        "column 'N' holds true/false values",
    ),
    (
        "a law that fails",
        ["fit", "--data", "{runs}", "--law", "{law}:BROKEN", "--target", "loss", "--starts", "4"],
        "law 'broken' fails on its inputs (N (16,)) (mylaw.py, line ",
    ),
    (
        "coordinator without port",
        GROUPS + ["--coordinator", "host", "--num-processes", "2", "--process-id", "0"],
        "--coordinator must be HOST:PORT",
    ),
    (
        "no processes",
        GROUPS + ["--coordinator", "h:1", "--num-processes", "0", "--process-id", "0"],
        "--num-processes must be at least 1",
    ),
    (
        "process id too large",
        GROUPS + ["--coordinator", "h:1", "--num-processes", "2", "--process-id", "2"],
        "--process-id must be in 0..1",
    ),
    ("predict at nothing", ["predict", "{fit}"], "give the points to predict at"),
    ("predict at a misspelt input", ["predict", "{fit}", "--at", "n=1e9,D=2e10"], "(did you mean 'N'?)"),
    ("predict at a mixture", ["predict", "{mix}", "--at", "samples=1e9"], "give --data FILE"),
    ("predict at a name twice", ["predict", "{fit}", "--at", "N=1e9,N=2e9"], "gives 'N' twice"),
    ("predict level", ["predict", "{fit}", "--at", "N=1e9,D=2e10", "--level", "1.5"], "--level must be"),
    ("plot extrapolate negative", ["plot", "{fit_data}", "--extrapolate=-1e24"], "--extrapolate values must"),
    ("plot extrapolate dash", ["plot", "{fit_data}", "--extrapolate", "-1e24"], "as in --extrapolate=-1"),
    ("allocate a mixture fit", ["allocate", "{mix}", "--compute", "1e21"], "for pools use `jaxlaws mix`"),
    ("keep samples without bootstrap", FIT + ["--keep-samples"], "--keep-samples keeps the bootstrap's"),
    ("mix without sizes", ["mix", "{mix}", "--budgets", "1e9"], "give --sizes"),
    ("plot JSON lines", ["plot", "{jsonlines}"], "holds 2 JSON records"),
    (
        "allocate output is the fit's data",
        ["allocate", "{fit_data}", "--compute", "1e21", "--output", "{runs}"],
        "--output {runs} is a file this command reads",
    ),
    ("plot output is the fit's data", ["plot", "{fit_data}", "--output", "{runs}"], "is a file this command"),
    ("output where nothing can be written", FIT[:-1] + ["/proc/x.json"], "cannot write in /proc"),
    (
        "as many rows as parameters",
        ["fit", "--data", "{five}", "--law", "chinchilla"],
        "5 rows cannot determine 5",
    ),
    (
        "saved fit with NaN",
        ["allocate", "{nanfit}", "--compute", "1e21"],
        "nanfit.json: parameter E of law 'chinchilla' is not finite",
    ),
]


@pytest.mark.parametrize("argv, message", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_a_bad_command_line_is_one_line_and_writes_nothing(argv, message, files, capsys):
    argv = [_fill(a, files) for a in argv]
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith("jaxlaws: error:"), err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert _fill(message, files) in err
    for out in ("out", "jsonl"):
        assert not __import__("os").path.exists(files[out])


FIG4 = jaxlaws.laws.GOYAL_FIG4


def _chinchilla_fit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jaxlaws.ConvergenceWarning)
        return jaxlaws.fit("chinchilla", GOOD, starts=4)


SIZES = np.full(4, 1e7)
CHIN = jaxlaws.laws.ChinchillaParams(E=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37)
decide = jaxlaws.decide

# (case, a call of the files fixture, a fragment of the message)
API_CASES = [
    ("fit delta zero", lambda f: jaxlaws.fit("chinchilla", GOOD, delta=0.0), "delta must be a positive"),
    ("fit seed negative", lambda f: jaxlaws.fit("chinchilla", GOOD, starts=4, seed=-1), "seed must be"),
    ("fit constant", lambda f: jaxlaws.fit("chinchilla", GOOD.assign(loss=2.5)), "is constant"),
    ("bootstrap zero", lambda f: jaxlaws.bootstrap(None, "chinchilla", GOOD, 0), "at least 2"),
    ("bootstrap one", lambda f: jaxlaws.bootstrap(None, "chinchilla", GOOD, 1), "at least 2"),
    (
        "allocate alpha < 0",
        lambda f: decide.allocate(CHIN._replace(alpha=-0.3), 1e21),
        "alpha must be positive",
    ),
    ("allocate C nan", lambda f: decide.allocate(CHIN, float("nan")), "finite and positive"),
    ("allocate C inf", lambda f: decide.allocate(CHIN, float("inf")), "finite and positive"),
    ("allocate E nan", lambda f: decide.allocate(CHIN._replace(E=float("nan")), 1e21), "E is not finite"),
    ("sensitivity C too far", lambda f: decide.allocation_sensitivity(CHIN, 1e308), "float64"),
    ("mixture negative size", lambda f: decide.optimize_mixture(FIG4, -SIZES, 1e9), "pool size must be"),
    ("mixture zero budget", lambda f: decide.optimize_mixture(FIG4, SIZES, [0.0, 1e9]), "budget"),
    (
        "mixture ragged tau",
        lambda f: decide.optimize_mixture(FIG4._replace(tau=np.ones(3)), SIZES, 1e9),
        "tau has 3",
    ),
    (
        "mixture negative tau",
        lambda f: decide.optimize_mixture(FIG4._replace(tau=-np.ones(4)), SIZES, 1e9),
        "tau",
    ),
    (
        "sensitivity off simplex",
        lambda f: decide.mixture_sensitivity(FIG4, SIZES, 1e9, weights=[0.5, 0.5, 0.5, 0.0]),
        "on the simplex",
    ),
    (
        "sensitivity negative weight",
        lambda f: decide.mixture_sensitivity(FIG4, SIZES, 1e9, weights=[1.2, -0.2, 0.0, 0.0]),
        "on the simplex",
    ),
    ("load truncated fit", lambda f: jaxlaws.io.load_fit(f["truncated"]), "was it cut short"),
    ("frontier without U", lambda f: decide.frontier(jaxlaws.laws.MUENNIGHOFF_C4, [1e21], None), "needs U"),
    (
        "derived quantity not finite",
        lambda f: jaxlaws.bootstrap(0, "chinchilla", GOOD, 8, point=_chinchilla_fit()).derived(
            lambda p: jnp.log(-p.alpha)
        ),
        "the derived quantity is not finite",
    ),
    (
        "fit columns not a mapping",
        lambda f: jaxlaws.fit("chinchilla", GOOD, columns="N=N"),
        "columns must map",
    ),
    ("fit max_steps zero", lambda f: jaxlaws.fit("chinchilla", GOOD, max_steps=0), "max_steps must be"),
    ("fit polish zero", lambda f: jaxlaws.fit("chinchilla", GOOD, polish=0), "polish must be"),
    (
        "bootstrap key None",
        lambda f: jaxlaws.bootstrap(None, "chinchilla", GOOD, 10),
        "key must be a jax.random key",
    ),
    (
        "bootstrap point of another law",
        lambda f: jaxlaws.bootstrap(0, "data_constrained", GOOD, 10, point=_chinchilla_fit()),
        "point is a fit of 'chinchilla'",
    ),
    ("mixture of chinchilla", lambda f: decide.optimize_mixture(CHIN, SIZES, 1e9), "needs filtering_mixture"),
    (
        "mixture b positive",
        lambda f: decide.optimize_mixture(FIG4._replace(b=-FIG4.b), SIZES, 1e9),
        "every b must be negative",
    ),
    (
        "mixture starts zero",
        lambda f: decide.optimize_mixture(FIG4, SIZES, 1e9, starts=0),
        "starts",
    ),
    ("mixture max_steps zero", lambda f: decide.optimize_mixture(FIG4, SIZES, 1e9, max_steps=0), "max_steps"),
    (
        "mixture max_passes zero",
        lambda f: decide.optimize_mixture(FIG4, SIZES, 1e9, max_passes=0),
        "max_passes",
    ),
    ("allocate no budgets", lambda f: decide.allocate(CHIN, []), "no compute budget C given"),
    (
        "allocate U of another length",
        lambda f: decide.allocate(jaxlaws.laws.MUENNIGHOFF_C4, [1e21, 1e22, 1e23], U=[1e9, 2e9]),
        "U has 2 values for 3 budgets",
    ),
    (
        "extrapolate holdout nan",
        lambda f: jaxlaws.extrapolate("chinchilla", GOOD, holdout=float("nan")),
        "holdout",
    ),
    ("extrapolate holdout text", lambda f: jaxlaws.extrapolate("chinchilla", GOOD, holdout="x"), "holdout"),
    ("extrapolate holdout 1.5", lambda f: jaxlaws.extrapolate("chinchilla", GOOD, holdout=1.5), "holdout"),
    (
        "batch data a list",
        lambda f: jaxlaws.batch.fit_groups("chinchilla", [1, 2], "g", f["jsonl"]),
        "DataFrame",
    ),
    (
        "batch by empty",
        lambda f: jaxlaws.batch.fit_groups("chinchilla", GOOD, [], f["jsonl"]),
        "by must name",
    ),
    (
        "batch group constant",
        lambda f: jaxlaws.batch.fit_groups(
            "chinchilla", GOOD.assign(loss=np.where(GOOD.g == 1, 2.5, GOOD.loss)), "g", f["jsonl"]
        ),
        "group 1: the target is constant",
    ),
    (
        "batch chunk zero",
        lambda f: jaxlaws.batch.fit_groups("chinchilla", GOOD, "g", f["jsonl"], chunk=0),
        "chunk",
    ),
    (
        "batch output in no directory",
        lambda f: jaxlaws.batch.fit_groups("chinchilla", GOOD, "g", f["dir"] + "/no/x.jsonl"),
        "does not exist",
    ),
    (
        "batch output a directory",
        lambda f: jaxlaws.batch.fit_groups("chinchilla", GOOD, "g", f["dir"], progress=False),
        "is a directory",
    ),
]


MIX_EXP = jaxlaws.laws.MixingExpParams(
    c=np.array([1.5, 2.0]), t=np.array([[-2.0, -0.5, 0.3], [0.2, -1.5, -0.6]])
)


def _propose(**kw):
    return jaxlaws.propose_mixture("mixing_exp", MIX_EXP, **kw)


def _shared_exponent_law():
    """Four outputs sharing an exponent and a floor: 3 parameters per output, 6 in all."""
    from typing import NamedTuple

    class P(NamedTuple):
        a: float
        p: float
        q: float

    C = jaxlaws.constraints
    return jaxlaws.Law(
        name="shared",
        fn=lambda prm, N: prm.q + prm.a * N[:, None] ** -prm.p,
        params=P,
        inputs=("N",),
        target="y",
        shapes={"a": ("outputs",)},
        constraints=P(a=C.positive, p=C.positive, q=C.positive),
    )


def _shared_table(rows):
    N = np.geomspace(1e6, 1e9, rows)
    y = 1.0 + np.array([1.0, 2.0, 3.0, 4.0]) * N[:, None] ** -0.3
    return {"N": N, **{f"y{j}": y[:, j] for j in range(4)}}


API_CASES += [
    ("fit as many rows as parameters", lambda f: jaxlaws.fit("chinchilla", GOOD.head(5)), "5 rows cannot"),
    (
        "fit an output with as many rows as its parameters",
        lambda f: jaxlaws.fit(_shared_exponent_law(), _shared_table(3), target=["y0", "y1", "y2", "y3"]),
        "3 rows cannot determine the 3 free parameters that output 'y0' depends on",
    ),
    (
        "propose a mapping missing domains",
        lambda f: _propose(unique_tokens={"d0": 1e8}, budgets=[1e9], max_epochs=4),
        "unique_tokens as a mapping must give every domain of the mixture ['d0', 'd1', 'd2'] a value: "
        "missing ['d1', 'd2']",
    ),
    ("propose r_star zero", lambda f: _propose(r_star=0), "r_star must be finite and positive, got 0"),
    ("propose r_star negative", lambda f: _propose(r_star=-1.0), "r_star must be finite and positive"),
    ("propose metric weights zero", lambda f: _propose(metric_weights=[0, 0]), "not all zero"),
    (
        "propose parameters of two shapes",
        lambda f: jaxlaws.propose_mixture("mixing_exp", MIX_EXP._replace(t=MIX_EXP.t[:1])),
        "parameters 'c' and 't' of 'mixing_exp' disagree on 'outputs': 2 against 1",
    ),
]

# (case, a call, the exception type, a fragment of the message): a wrong type of argument
TYPE_CASES = [
    ("propose min_weight text", lambda: _propose(min_weight="abc"), "min_weight must be a number"),
    (
        "propose max_epochs text",
        lambda: _propose(unique_tokens=1e9, budgets=[1e9], max_epochs="4"),
        "max_epochs",
    ),
    ("propose metric weights text", lambda: _propose(metric_weights="ab"), "metric_weights must be 2"),
    ("swarm from numbers", lambda: jaxlaws.swarm.read(123, 456), "ratios must be a CSV or Parquet path"),
    ("swarm metrics a number", lambda: jaxlaws.swarm.load("olmix-dclm", metrics=5), "got int 5"),
]


@pytest.mark.parametrize("call, message", [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_a_bad_call_is_one_value_error_line(call, message, files):
    with pytest.raises(ValueError) as info:
        call(files)
    text = str(info.value)
    assert message in text and "\n" not in text, text


@pytest.mark.parametrize("call, message", [c[1:] for c in TYPE_CASES], ids=[c[0] for c in TYPE_CASES])
def test_an_argument_of_the_wrong_type_is_one_type_error_line(call, message):
    with pytest.raises(TypeError) as info:
        call()
    text = str(info.value)
    assert message in text and "\n" not in text, text


def test_a_closed_pipe_ends_the_command_quietly(files):
    """``jaxlaws allocate ... | head -1``: the reader goes away after one line."""
    import subprocess
    import sys

    argv = [sys.executable, "-m", "jaxlaws", "allocate", files["fit"], "--compute", "1e20:1e25:20000"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait() == 0, err
    assert first.split()[:3] == [b"C", b"N", b"D"] and err == "", err


@pytest.mark.parametrize(
    "labels, groups",
    [((0, 1), [0, 1]), (("NA", "None"), ["NA", "None"])],
    ids=["numbers", "NA and None are labels"],
)
def test_rows_with_an_empty_group_label_are_counted_and_left_out(tmp_path, capsys, labels, groups):
    table = GOOD.assign(g=np.where(GOOD.g == 0, *labels)).astype({"g": object})
    table.loc[[3, 4], "g"] = np.nan  # written as an empty cell
    csv = tmp_path / "runs.csv"
    table.to_csv(csv, index=False)
    out = tmp_path / "fits.jsonl"
    argv = ["fit", "--data", str(csv), "--law", "chinchilla", "--group-by", "g", "--output", str(out)]
    assert main(argv + ["--starts", "8"]) == 0
    err = capsys.readouterr().err
    assert "jaxlaws: warning: 2 row(s) with an empty group label (column 'g', first row 5)" in err
    assert "Traceback" not in err
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["group"] for r in records) == groups and records[0]["n_points"] == 6


def test_a_fit_that_does_not_converge_says_so_and_exits_3(tmp_path, capsys):
    out = tmp_path / "fit.json"
    argv = ["fit", "--data", str(tmp_path / "runs.csv"), "--law", "chinchilla", "--output", str(out)]
    GOOD.to_csv(tmp_path / "runs.csv", index=False)
    # one start and two steps: the fit stops at its step limit
    init = json.dumps(dict(E=1.0, A=100.0, B=100.0, alpha=0.2, beta=0.2))
    code = main(argv + ["--starts", "init", "--init", init, "--objective", "sse_log"] + ["--max-steps", "2"])
    captured = capsys.readouterr()
    assert code == 3, captured.err
    assert "jaxlaws: warning: the best start stopped with status 'max_steps'" in captured.err
    assert captured.err.count("did not converge") == 1  # said once
    assert json.loads(out.read_text())["status"] == "max_steps"


def test_an_interrupted_command_says_so_in_one_line(monkeypatch, capsys):
    import jaxlaws.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_datasets", interrupted)
    assert main(["datasets"]) == 130
    err = capsys.readouterr().err
    assert err.startswith("jaxlaws: interrupted") and err.count("\n") == 1


def test_a_law_whose_constraint_is_not_a_constraint_is_one_line():
    from typing import NamedTuple

    class P(NamedTuple):
        a: float

    with pytest.raises(ValueError, match="the constraint of 'a' is 'positive', not a constraint"):
        jaxlaws.Law(
            name="x", fn=lambda p, N: p.a * N, params=P, inputs=("N",), target="y", constraints=P("positive")
        )
