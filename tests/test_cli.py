"""The command line: the README's main job, and one-line errors for user mistakes."""

import json

import pytest

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
    ],
)
def test_user_mistakes_are_one_line_errors(argv, message, capsys):
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
