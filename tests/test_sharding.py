"""Sharded batches equal single-device results exactly (4 forced CPU devices, in a subprocess
because the device count is fixed when JAX starts)."""

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, jax, numpy as np, pandas as pd
    import jaxlaws
    from jaxlaws.batch import fit_groups
    assert len(jax.local_devices()) == 4
    out = {}
    df = jaxlaws.datasets.load("chinchilla-epoch", subset="standard")
    runs = jaxlaws.datasets.load("datablations-c4")
    frozen = {k: getattr(jaxlaws.laws.MUENNIGHOFF_C4, k) for k in ["E", "A", "B", "alpha", "beta"]}
    for d in (1, 4):
        # 25 starts: not a multiple of 4
        r = jaxlaws.fit("data_constrained", runs, frozen=frozen, devices=d)  # starts stay on one device
        out[f"fit{d}"] = [r.value] + [float(v) for v in r.params] + r.starts.objective.tolist()
        # 6 and 8 resamples: one batch that does not divide by 4, one that does
        for R in (6, 8):
            bs = jaxlaws.bootstrap(
                jax.random.key(0), "chinchilla", df, R, devices=d, starts=16, seed=1
            )
            out[f"bs{d}_{R}"] = bs.objective.tolist() + np.stack(bs.samples).ravel().tolist()
    rng = np.random.default_rng(0)
    N = np.geomspace(1e7, 1e10, 8)
    tables = []
    for g in range(10):
        D = 20 * N * rng.uniform(0.5, 2, 8)
        loss = (1.8 + 480 / N**0.35 + 2100 / D**0.37) * np.exp(rng.normal(0, 0.005, 8))
        tables.append(pd.DataFrame({"g": g, "N": N, "D": D, "loss": loss}))
    data = pd.concat(tables)
    for d in (1, 4):
        res = fit_groups(
            "chinchilla", data, "g", f"{OUT}/groups{d}.jsonl", starts=8, chunk=8, devices=d, progress=False
        )
        out[f"groups{d}"] = res.drop(columns="group").to_numpy().tolist()
    print(json.dumps(out))
    """
)


def test_sharded_equals_single_device(tmp_path):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    code = f"OUT = {str(tmp_path)!r}\n" + SCRIPT
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["fit1"] == out["fit4"]
    assert out["bs1_6"] == out["bs4_6"] and out["bs1_8"] == out["bs4_8"]
    assert out["groups1"] == out["groups4"]
