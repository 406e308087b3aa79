"""Batch jobs resume safely: a changed group is fitted again, a removed one dropped, a file
written with other options refused, cut and garbled lines repaired, a second job on the
same file refused; and a group's result does not depend on its batch-mates."""

import json

import numpy as np
import pytest
from synthetic import chinchilla_groups

import jaxlaws.batch as batch
from jaxlaws.batch import ResumeWarning, fit_groups, read_results
from jaxlaws.cli import main
from jaxlaws.problem import Problem

TABLE = chinchilla_groups(4, by="g")  # groups 0..3 of 8 runs


def _fit(table, out, **kw):
    return fit_groups("chinchilla", table, "g", out, starts=8, chunk=4, progress=False, **kw)


@pytest.fixture
def fitted(tmp_path):
    out = tmp_path / "fits.jsonl"
    _fit(TABLE, out)
    return out


@pytest.fixture
def calls(monkeypatch):
    """How many batched solves a job makes (0: nothing was fitted again)."""
    count = []
    solve = Problem.solve

    def counted(self, *args, **kw):
        count.append(1)
        return solve(self, *args, **kw)

    monkeypatch.setattr(Problem, "solve", counted)
    return count


def _lines(path):
    return path.read_text().splitlines()


def test_every_record_names_its_data_and_options(fitted):
    records = [json.loads(line) for line in _lines(fitted)]
    assert [r["group"] for r in records] == [0, 1, 2, 3]
    assert all(len(r["data_sha256"]) == 64 for r in records)
    assert len({r["data_sha256"] for r in records}) == 4
    options = records[0]["options"]
    assert options["objective"] == "huber" and options["starts"] == 8 and options["law"] == "chinchilla"
    assert all(r["options"] == options for r in records)


def test_a_complete_file_is_not_fitted_again(fitted, calls):
    before = fitted.read_text()
    _fit(TABLE, fitted)
    assert calls == [] and fitted.read_text() == before


def test_a_changed_group_is_fitted_again_and_a_removed_one_dropped(fitted, calls):
    before = {json.loads(line)["group"]: line for line in _lines(fitted)}
    changed = TABLE[TABLE.g != 3].copy()
    changed.loc[changed.g == 1, "loss"] *= 1.05
    with pytest.warns(
        ResumeWarning, match="1 group.s. whose data changed fitted again, 1 group.s. no longer"
    ):
        res = _fit(changed, fitted)
    assert len(calls) == 1  # group 1 alone
    after = {json.loads(line)["group"]: line for line in _lines(fitted)}
    assert sorted(after) == [0, 1, 2] and list(res.group) == [0, 2, 1]
    assert after[0] == before[0] and after[2] == before[2]
    assert json.loads(after[1])["value"] != json.loads(before[1])["value"]


def test_other_options_are_refused_and_the_file_kept(fitted, capsys):
    before = fitted.read_text()
    with pytest.raises(ValueError, match="was fitted with objective='huber', this job has objective='sse'"):
        _fit(TABLE, fitted, objective="sse")
    csv = fitted.parent / "runs.csv"
    TABLE.to_csv(csv, index=False)
    argv = ["fit", "--data", str(csv), "--law", "chinchilla", "--group-by", "g", "--output", str(fitted)]
    assert main(argv + ["--starts", "8", "--chunk", "4", "--seed", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "was fitted with seed=0, this job has seed=1" in err
    assert fitted.read_text() == before


def test_a_last_line_cut_before_its_newline_is_kept(fitted, calls):
    text = fitted.read_text()
    fitted.write_text(text[:-1])  # the interruption came between the record and its newline
    with pytest.warns(ResumeWarning, match="its last line completed"):
        _fit(TABLE, fitted)
    assert calls == [] and fitted.read_text() == text


def test_cut_and_garbled_lines_are_repaired(fitted, calls):
    lines = _lines(fitted)
    # a record cut in the middle of the file (a crash, then an append), and a garbled line
    fitted.write_text("\n".join([lines[0], lines[1][:30], "\x00\x00garbage", lines[2], lines[3]]) + "\n")
    with pytest.warns(ResumeWarning, match="2 unreadable line.s. dropped"):
        _fit(TABLE, fitted)
    assert len(calls) == 1  # group 1 again
    assert sorted(json.loads(line)["group"] for line in _lines(fitted)) == [0, 1, 2, 3]
    assert _lines(fitted)[:3] == [lines[0], lines[2], lines[3]]
    assert _lines(fitted)[3] == lines[1]  # deterministic: the same record again


def test_a_second_job_on_the_same_output_is_refused(fitted, capsys):
    before = fitted.read_text()
    with batch._locked(str(fitted)):  # a job holds the file
        with pytest.raises(ValueError, match="another job is writing .*fits.jsonl"):
            _fit(TABLE, fitted)
        csv = fitted.parent / "runs.csv"
        TABLE.to_csv(csv, index=False)
        argv = ["fit", "--data", str(csv), "--law", "chinchilla", "--group-by", "g", "--output", str(fitted)]
        assert main(argv) == 2
        assert "another job is writing" in capsys.readouterr().err
    assert fitted.read_text() == before
    assert not (fitted.parent / "fits.jsonl.lock").exists()  # released and removed
    _fit(TABLE, fitted)  # free again


def test_a_groups_result_does_not_depend_on_its_chunk(tmp_path):
    """Each group screens, polishes and stops on its own results: 24 groups in chunks of 4
    and of 24 get the same statuses, objectives and predictions to rounding (the slot count
    changes the compiled program's order of operations). Parameters the data do not pin
    down may differ: where ``A / N^alpha`` has vanished (alpha of 3 to 22 on two of these
    groups) any ``A`` and ``alpha`` that keep it vanished fit as well."""
    table = chinchilla_groups(24, by="g", seed=3)
    small = fit_groups("chinchilla", table, "g", tmp_path / "a.jsonl", starts=16, chunk=4, progress=False)
    large = fit_groups("chinchilla", table, "g", tmp_path / "b.jsonl", starts=16, chunk=24, progress=False)
    assert list(small.group) == list(large.group) and list(small.status) == list(large.status)
    np.testing.assert_allclose(small.value, large.value, rtol=1e-10)
    from jaxlaws.laws import ChinchillaParams, chinchilla

    for g, rows in table.groupby("g"):
        a, b = (ChinchillaParams(**r[list(ChinchillaParams._fields)]) for r in (small.iloc[g], large.iloc[g]))
        pa, pb = (np.asarray(chinchilla(p, rows.N.to_numpy(), rows.D.to_numpy())) for p in (a, b))
        np.testing.assert_allclose(pa, pb, rtol=1e-8, err_msg=f"group {g}")


def test_read_results_skips_what_it_cannot_read(fitted):
    fitted.write_text(fitted.read_text() + '{"group": 9, "val')
    assert list(read_results(fitted).group) == [0, 1, 2, 3]


def test_another_group_column_is_other_options(fitted):
    """The same labels in another column are another grouping: refused, not taken as done."""
    with pytest.raises(ValueError, match=r"was fitted with by=\['g'\], this job has by=\['g2'\]"):
        fit_groups("chinchilla", TABLE.assign(g2=TABLE.g), "g2", fitted, starts=8, chunk=4, progress=False)


def test_a_link_to_the_output_shares_its_lock(fitted):
    link = fitted.parent / "link.jsonl"
    link.symlink_to(fitted)
    with batch._locked(str(fitted.resolve())):
        with pytest.raises(ValueError, match="another job is writing"):
            _fit(TABLE, link)
