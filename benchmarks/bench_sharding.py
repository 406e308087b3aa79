"""Benchmark: throughput of batch fits (fits per second) against batch size, on one device
and sharded across several, in one process.

Two batched workloads, through the public API:

- a batch job: ``fit_groups`` on ``B`` tables of 12 synthetic Chinchilla runs each, all in
  one chunk (``chunk=B``), 16 random starts per table; includes validation and writing the
  results file;
- a bootstrap: ``bootstrap`` of the 240-run Chinchilla table with ``B`` resamples, started
  from the full-data optimum.

Each configuration is timed after a warm-up call on the same shapes (compile time is not
throughput). On a CPU the script re-runs itself with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` so that 1 and 4 devices are compared
in one process; on an accelerator it uses the devices there are.

    python benchmarks/bench_sharding.py
    python benchmarks/bench_sharding.py --batches 8,64,512 --devices 1,4
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

FORCED = 4


def _groups(n_groups: int, seed: int = 0):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    N = np.geomspace(1e7, 1e10, 12)
    tables = []
    for g in range(n_groups):
        D = 20 * N * rng.uniform(0.5, 2, N.size)
        loss = (1.8 + 480 / N**0.35 + 2100 / D**0.37) * np.exp(rng.normal(0, 0.005, N.size))
        tables.append(pd.DataFrame({"g": g, "N": N, "D": D, "loss": loss}))
    return pd.concat(tables, ignore_index=True)


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", default="4,16,64,256,1024", help="batch sizes, comma-separated")
    p.add_argument("--devices", help="device counts to compare (default: 1 and all local devices)")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per configuration (best kept)")
    args = p.parse_args()

    if os.environ.get("JAXLAWS_BENCH_CHILD") is None:
        import jax

        if jax.default_backend() == "cpu" and len(jax.local_devices()) < FORCED:
            flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={FORCED}"
            env = {**os.environ, "JAXLAWS_BENCH_CHILD": "1", "XLA_FLAGS": flags}
            sys.exit(subprocess.run([sys.executable, *sys.argv], env=env).returncode)

    import jax

    import jaxlaws
    from jaxlaws.batch import fit_groups

    batches = [int(b) for b in args.batches.split(",")]
    n_local = len(jax.local_devices())
    counts = [int(d) for d in args.devices.split(",")] if args.devices else sorted({1, n_local})
    dev = jax.local_devices()[0]
    print(
        f"# {platform.machine()}, {os.cpu_count()} cores, {n_local} local {dev.platform} devices "
        f"({getattr(dev, 'device_kind', '')}), JAX {jax.__version__}, Python {platform.python_version()}"
    )

    table = jaxlaws.datasets.load("chinchilla-epoch", subset="standard")
    point = jaxlaws.fit("chinchilla", table)
    tmp = tempfile.mkdtemp()

    def runner(workload: str, B: int, d: int):
        """A call that fits ``B`` problems on ``d`` devices (``tag`` names its output)."""
        if workload == "batch job":
            data = _groups(B)
            return lambda tag: fit_groups(
                "chinchilla", data, "g", os.path.join(tmp, f"{tag}-{B}-{d}.jsonl"),
                starts=16, chunk=B, devices=d, progress=False,
            )  # fmt: skip
        key = jax.random.key(0)
        return lambda tag: jaxlaws.bootstrap(key, "chinchilla", table, B, point=point, devices=d)

    header = " | ".join(f"{d} device{'s' * (d > 1)}: fits/s" for d in counts)
    print(f"| workload | batch | {header} | ratio |")
    print("|---|---|" + "---|" * len(counts) + "---|")
    for workload in ("batch job", "bootstrap"):
        for B in batches:
            rates = []
            for d in counts:
                run = runner(workload, B, d)
                run("warm")
                best = min(_timed(lambda i=i, run=run: run(f"t{i}")) for i in range(args.repeats))
                rates.append(B / best)
            cells = " | ".join(f"{r:,.0f}" for r in rates)
            print(f"| {workload} | {B} | {cells} | {rates[-1] / rates[0]:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
