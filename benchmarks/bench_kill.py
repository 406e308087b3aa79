"""Kill the command line's writers at random moments: nothing finished is ever lost.

    python benchmarks/bench_kill.py [--times 20] [--groups 2000]

1. Each writer (a proposal table of 20,000 rows, a saved fit, a plot) rewrites its file
   over and over in a child process, killed with SIGKILL at a random moment; the file must
   then be one whole version (the old one or the new one), ``--times`` kills each.
2. A batch job (``jaxlaws fit --group-by``, ``--groups`` groups) killed ``--times`` times at
   random moments and run again each time: after every kill each line of its output is
   one whole record of a distinct group (a last line cut short is repaired by the next
   run); at the end every group is in it exactly once, with the values of a job that was
   never killed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
import killing  # noqa: E402
from synthetic import chinchilla_groups  # noqa: E402


def _batch(folder: str, times: int, groups: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    table = chinchilla_groups(groups, by="g")
    data = os.path.join(folder, "runs.csv")
    table.to_csv(data, index=False)
    argv = [sys.executable, "-m", "jaxlaws", "fit", "--data", data, "--law", "chinchilla"]
    argv += ["--group-by", "g", "--starts", "8", "--chunk", "16"]
    out, clean = os.path.join(folder, "fits.jsonl"), os.path.join(folder, "clean.jsonl")
    subprocess.run(argv + ["--output", clean], check=True, capture_output=True)
    bad_lines = repeated = cut_lines = 0
    done_after_kill = []
    for _ in range(times):
        child = subprocess.Popen(
            argv + ["--output", out], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(1.0, 10.0))
        child.send_signal(signal.SIGKILL)
        child.wait()
        if not os.path.exists(out):
            done_after_kill.append(0)
            continue
        with open(out, "rb") as fh:
            lines = fh.read().split(b"\n")
        cut = lines.pop()  # after the last newline: empty, or a line cut short by the kill
        seen = set()
        for line in lines:
            try:
                g = json.loads(line)["group"]
            except (ValueError, KeyError):
                bad_lines += 1
                continue
            repeated += g in seen
            seen.add(g)
        done_after_kill.append(len(seen))
        cut_lines += bool(cut)
    subprocess.run(argv + ["--output", out], check=True, capture_output=True)

    def records(path):
        with open(path) as fh:
            return {r["group"]: r for r in map(json.loads, fh)}

    final, reference = records(out), records(clean)
    with open(out) as fh:
        n_lines = sum(1 for _ in fh)
    same = all(final[g]["params"] == reference[g]["params"] for g in reference)
    return {
        "kills": times,
        "groups done after each kill": done_after_kill,
        "unreadable complete lines": bad_lines,
        "kills that left a last line cut short": cut_lines,
        "groups twice": repeated,
        "final lines": n_lines,
        "final groups": len(final),
        "equal to the job never killed": same and set(final) == set(reference),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--times", type=int, default=20)
    ap.add_argument("--groups", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    for kind in killing.WRITERS:
        with tempfile.TemporaryDirectory() as folder:
            t0 = time.perf_counter()
            outcome = killing.kill_at_random(kind, folder, args.times, seed=args.seed)
            print(f"{kind:<7} {outcome}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        outcome = _batch(folder, args.times, args.groups, args.seed)
        print(f"batch   {outcome}  ({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
