"""Sharded batches equal single-device results: fits of groups and resamples to the last bit,
mixture sweeps to rounding. On 4 forced CPU devices in one process, and on 2 processes with
2 devices each under ``jax.distributed`` (subprocesses, because the device count is fixed
when JAX starts)."""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic import chinchilla_groups

from jaxlaws.batch import fit_groups, part_path, read_results
from jaxlaws.sharding import padded_size

SCRIPT = textwrap.dedent(
    """
    import json, jax, numpy as np, pandas as pd
    import jaxlaws
    from jaxlaws.batch import fit_groups
    from jaxlaws.decide import optimize_mixture
    assert len(jax.local_devices()) == 4
    out = {}
    df = jaxlaws.datasets.load("chinchilla-epoch", subset="standard")
    runs = jaxlaws.datasets.load("datablations-c4")
    frozen = {k: getattr(jaxlaws.laws.MUENNIGHOFF_C4, k) for k in ["E", "A", "B", "alpha", "beta"]}
    fig4 = jaxlaws.laws.GOYAL_FIG4
    stack = fig4._replace(b=np.stack([np.asarray(fig4.b), np.asarray(fig4.b) * 1.1]))
    for d in (1, 4):
        # 25 starts: not a multiple of 4
        r = jaxlaws.fit("data_constrained", runs, frozen=frozen, devices=d)  # starts stay on one device
        out[f"fit{d}"] = [r.value] + [float(v) for v in r.params] + r.starts.objective.tolist()
        # resamples: 3 and 6 do not divide by 4 (3 would be one per device unpadded), 8 does
        for R in (3, 6, 8):
            bs = jaxlaws.bootstrap(
                jax.random.key(0), "chinchilla", df, R, devices=d, starts=16, seed=1
            )
            out[f"bs{d}_{R}"] = bs.objective.tolist() + np.stack(bs.samples).ravel().tolist()
        # mixture sweeps: 5 budgets (one set), 3 budgets x 2 parameter sets
        sweeps = (("one", fig4, np.geomspace(16e6, 5e9, 5)), ("stack", stack, [1e8, 1e9, 5e9]))
        for name, params, budgets in sweeps:
            dec = optimize_mixture(params, np.full(4, 12.8e6), budgets, devices=d, starts=2)
            out[f"mix{d}_{name}"] = {k: np.asarray(v).ravel().tolist() for k, v in dec._asdict().items()}
    data = pd.read_csv(f"{OUT}/groups.csv")  # 10 groups, column g
    for d in (1, 4):
        for chunk in (3, 8):  # chunks become 4 on 1 device, 16 on 4 devices
            res = fit_groups(
                "chinchilla", data, "g", f"{OUT}/groups{d}_{chunk}.jsonl", starts=8, chunk=chunk, devices=d,
                progress=False,
            )
            out[f"groups{d}_{chunk}"] = res.drop(columns="group").to_numpy().tolist()
    print(json.dumps(out))
    """
)


def _env(devices: int) -> dict:
    return {
        **os.environ,
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        "JAX_PLATFORMS": "cpu",
    }


def test_sharded_equals_single_device(tmp_path):
    chinchilla_groups(10, by="g").to_csv(tmp_path / "groups.csv", index=False)
    code = f"OUT = {str(tmp_path)!r}\n" + SCRIPT
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(4), timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["fit1"] == out["fit4"]
    # resamples: the per-device batch sets the number of solver slots, and XLA compiles a
    # program with other slot counts with its reductions in another order: a resample's
    # objective agrees to rounding, its parameters to 1e-6 along the flat A-B ridge (5e-8
    # measured); with the same per-device batch (3 resamples: 4 on one device and on each
    # of 4) they are equal to the bit
    assert out["bs1_3"] == out["bs4_3"]
    for R in (6, 8):
        one, four = np.asarray(out[f"bs1_{R}"]), np.asarray(out[f"bs4_{R}"])
        np.testing.assert_allclose(four[:R], one[:R], rtol=1e-12)
        np.testing.assert_allclose(four[R:], one[R:], rtol=1e-6)
    # mixture sweeps agree to rounding, not to the bit: XLA compiles the law's gradient for
    # several devices with another order of operations (5.6e-17 apart on a single gradient),
    # and on the flat optimum the weights move by up to ~1e-8 (the error by ~1e-15)
    for name in ("one", "stack"):
        one, four = out[f"mix1_{name}"], out[f"mix4_{name}"]
        assert one["n"] == four["n"] and one["best_k"] == four["best_k"]
        np.testing.assert_allclose(four["error"], one["error"], rtol=1e-13)
        np.testing.assert_allclose(four["topk_errors"], one["topk_errors"], rtol=1e-13)
        np.testing.assert_allclose(four["weights"], one["weights"], rtol=0, atol=1e-7)
    # groups: each group screens and widens on its own results, so its result depends on its
    # batch-mates only through the compiled program (the slot count follows the per-device
    # chunk): the same per-device chunk gives the same bits (chunk 3 is 4 groups on one
    # device and on each of 4), another agrees to rounding in the objective and to 1e-6 in
    # parameters along flat ridges
    assert out["groups1_3"] == out["groups4_3"] == out["groups4_8"]

    def numbers(rows):
        return np.array([[row[0]] + row[3:] for row in rows], float)

    for other in ("groups1_8",):
        assert [row[1] for row in out[other]] == [row[1] for row in out["groups1_3"]]  # statuses
        np.testing.assert_allclose(numbers(out[other])[:, 0], numbers(out["groups1_3"])[:, 0], rtol=1e-12)
        np.testing.assert_allclose(numbers(out[other])[:, 1:], numbers(out["groups1_3"])[:, 1:], rtol=1e-6)


@pytest.mark.parametrize(
    "n, devices, size", [(1, 1, 4), (3, 1, 4), (9, 1, 9), (3, 4, 16), (16, 4, 16), (17, 4, 20)]
)
def test_padded_size_is_a_multiple_with_the_minimum_per_device(n, devices, size):
    assert padded_size(n, devices) == size


def _groups(n_groups=11) -> pd.DataFrame:
    return chinchilla_groups(n_groups, by="ablation", label=lambda g: f"a{g:02d}")


def _free_port(base: int = 0, span: int = 1) -> int:
    """A free local port: any (``span`` 1), or one of ``base .. base + span - 1``."""
    for port in np.random.default_rng().permutation(span) + base:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", int(port)))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port")


@pytest.mark.parametrize("launch", ["coordinator", "slurm"])
def test_two_hosts_gather_one_output_equal_to_one_device(tmp_path, launch):
    """The README's worked example: two processes (2 CPU devices each) join one job, named
    by --coordinator or detected from SLURM's variables with --distributed; each fits its
    share of 11 groups and process 0 writes one output, equal to a one-device fit. Process 1
    resumes from a part file an interruption left behind."""
    csv = tmp_path / "runs.csv"
    _groups().to_csv(csv, index=False)
    ref_path = tmp_path / "ref.jsonl"
    ref = fit_groups("chinchilla", pd.read_csv(csv), "ablation", ref_path, starts=8, chunk=3, progress=False)
    assert len(ref) == 11

    out = tmp_path / "fits.jsonl"
    # process 1's share is a01, a03, ..., a09: a01 finished, a03 was cut mid-line
    lines = ref_path.read_text().splitlines()
    Path(part_path(out, 1, 2)).write_text(lines[1] + "\n" + lines[3][:40])
    command = [sys.executable, "-m", "jaxlaws", "fit", "--data", str(csv), "--law", "chinchilla"]
    command += ["--group-by", "ablation", "--output", str(out), "--starts", "8", "--chunk", "3"]
    if launch == "coordinator":
        port = _free_port()
        flags = [
            [f"--coordinator=127.0.0.1:{port}", "--num-processes=2", f"--process-id={i}"] for i in range(2)
        ]
        envs = [_env(2)] * 2
    else:  # JAX puts SLURM's coordinator on port 61440 + job id % 4096 of the first node
        job = _free_port(61440, 4096) - 61440
        flags = [["--distributed"]] * 2
        slurm = dict(SLURM_JOB_ID=str(job), SLURM_STEP_NODELIST="localhost", SLURM_NTASKS="2")
        envs = [{**_env(2), **slurm, "SLURM_PROCID": str(i), "SLURM_LOCALID": str(i)} for i in range(2)]
    procs = [
        subprocess.Popen(
            command + flags[i], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=envs[i]
        )
        for i in range(2)
    ]
    results = [p.communicate(timeout=600) for p in procs]
    for p, (_, stderr) in zip(procs, results):
        assert p.returncode == 0, stderr[-3000:]
    assert "11 groups in" in results[0][0]
    assert "written by process 0" in results[1][0]
    # one output, in group order, equal to the one-device fit: the same groups and statuses,
    # the objectives to rounding and the parameters to 1e-6 (the two-device program is
    # compiled by XLA with its operations in another order)
    got = read_results(out)
    assert list(got.group) == list(ref.group) and list(got.status) == list(ref.status)
    np.testing.assert_allclose(got.value, ref.value, rtol=1e-12)
    params = ["E", "A", "B", "alpha", "beta"]
    np.testing.assert_allclose(got[params].to_numpy(), ref[params].to_numpy(), rtol=1e-6)
    # each part holds its share once: a01 was not fitted again, the cut line was replaced
    parts = [Path(part_path(out, i, 2)).read_text().splitlines() for i in range(2)]
    shares = [[json.loads(line)["group"] for line in part] for part in parts]
    assert shares == [[f"a{g:02d}" for g in range(0, 11, 2)], [f"a{g:02d}" for g in range(1, 11, 2)]]


def test_full_start_grid_on_several_cpu_devices_does_not_hang(tmp_path):
    """Hoffmann's 4500-start grid on 2 CPU devices sharing the machine's thread pool: with
    LAPACK's batched Cholesky every pool thread waited on work queued behind it and the job
    hung (found by a new user; 3 of 3 runs on 2 cores). The solver's own Cholesky cannot."""
    code = textwrap.dedent(
        f"""
        import pandas as pd
        from jaxlaws.batch import fit_groups
        data = pd.read_csv({str(tmp_path / "runs.csv")!r})
        out = {str(tmp_path / "out.jsonl")!r}
        res = fit_groups("chinchilla", data, "ablation", out, chunk=4, progress=False)
        print(len(res), sorted(set(res.status)))
        """
    )
    _groups(4).to_csv(tmp_path / "runs.csv", index=False)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(2), timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[0] == "4"
