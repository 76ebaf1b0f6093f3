"""Can a fixed "speed check" run around each timed window see the machine's slow spells? (issue 11's canary idea)

On the shared 2-core VMs dlbench is built on, the same case runs up to ×1.5 slower in some processes than in others
(benchmarks/results/speed-check-2core.md), in spells of seconds to minutes, with no other process visible.
This script measures, in N fresh processes one after another, a small torch LSTM step (one thread, pinned) and
three candidate speed checks timed just before and after it (numpy elementwise in L2, tiny numpy calls dominated by
dispatch, a pure-Python dict loop), and prints how well each check's slowdown tracks the step's (Pearson r over
processes). dlbench would only use a check as a disturbance criterion if it tracked the step closely.

    .venv/bin/python benchmarks/speed_check.py [--processes 24] [--cpu 0]

About 2 s per process. Ratios and correlations only: nothing here is an absolute threshold.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np

CHILD = r"""
import json, statistics, time
import numpy as np, torch
torch.set_num_threads(1)
lstm = torch.nn.LSTM(64, 64); x = torch.randn(30, 8, 64)
def step():
    with torch.no_grad(): lstm(x)
a = np.ones(16384, np.float32); b = a.copy(); c = a.copy(); t1 = np.ones(4, np.float32); t2 = t1.copy()
def elementwise():
    s = time.perf_counter()
    for _ in range(500): np.multiply(a, b, out=c); np.add(c, a, out=c)
    return time.perf_counter() - s
def dispatch():
    s = time.perf_counter()
    for _ in range(5000): np.add(t1, t2, out=t2)
    return time.perf_counter() - s
def python():
    s = time.perf_counter(); d = {}
    for i in range(20000): d[i & 255] = d.get(i & 255, 0) + i
    return time.perf_counter() - s
checks = (elementwise, dispatch, python)
def read():
    return {f.__name__: statistics.median(f() for _ in range(3)) for f in checks}
for _ in range(5): step()
before = read()
times = []; t0 = time.perf_counter()
while time.perf_counter() - t0 < 1.0:
    t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
after = read()
print(json.dumps({"step": statistics.median(times), **{k: max(before[k], after[k]) for k in before}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, default=24)
    parser.add_argument("--cpu", type=int, default=0)
    args = parser.parse_args()
    rows = []
    for i in range(args.processes):
        out = subprocess.run(["taskset", "-c", str(args.cpu), sys.executable, "-c", CHILD], capture_output=True,
                             text=True, check=True).stdout  # fmt: skip
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(f"process {i + 1}/{args.processes}: step {rows[-1]['step'] * 1e6:.0f} µs", file=sys.stderr)
    step = np.array([r["step"] for r in rows])
    print(f"step time over {len(rows)} processes: fastest ×1.00, median ×{np.median(step) / step.min():.2f}, "
          f"slowest ×{step.max() / step.min():.2f} (of the fastest)")
    for name in ("elementwise", "dispatch", "python"):
        check = np.array([r[name] for r in rows])
        r = float(np.corrcoef(step, check)[0, 1])
        print(f"{name:12s} check: slowest ×{check.max() / check.min():.2f} of its fastest; "
              f"Pearson r with the step time {r:+.2f}")


if __name__ == "__main__":
    main()
