"""Is dlbench's path as fast as the simplest idiomatic code of each framework? (one session, one machine)

For LSTM forward at seq_len=30, batch=32, hidden=128, fp32, CPU: alternate, ROUNDS times, a bare loop of
the framework (benchmarks/bare/<framework>.py, run as its own process, no dlbench code) and `dlbench run`
of the same case; report the median of each and the ratio bare/dlbench (1.0 = same speed; < 1 means dlbench
reports the framework slower than a plain user loop, > 1 faster).

    .venv/bin/python benchmarks/compare_idiomatic.py [--backends torch,jax] [--rounds 3] [--device cuda]

With --device cuda (torch and jax, which have GPU bare loops): the bare loop times blocks of steps (torch with
CUDA events), and dlbench runs as the seed suite does on a GPU (blocks of at least 5 ms between synchronisations);
the goal is a ratio within 3% of 1.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import dlbench
from dlbench.backends import BACKENDS, FRAMEWORKS

HERE = Path(__file__).parent
# dlbench backend -> the bare script that a user of that framework would write: each framework's own (its registry
# entry's `bare`), against the framework's first backend (torch, tensorflow, jax, pytensor, keras-jax).
BARE = {f.backends[0].name: f.bare.removesuffix(".py") for f in FRAMEWORKS if f.bare}
SIZE = {"seq_len": [30], "batch": [32], "hidden": [128]}


def bare_median(module: str, device: str = "cpu") -> float:
    """median_forward_s() (on cuda: median_forward_cuda_s()) of benchmarks/bare/<module>.py, in a fresh process."""
    # -P: bare/ stays off sys.path, where bare/torch.py would shadow the real torch.
    function = "median_forward_s" if device == "cpu" else "median_forward_cuda_s"
    code = f"import runpy; print(repr(runpy.run_path({str(HERE / 'bare' / f'{module}.py')!r})[{function!r}]()))"
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True, timeout=600)
    return float(out.stdout.strip().splitlines()[-1])


def dlbench_median(backend: str, store: Path, device: str = "cpu") -> float:
    measure = {"block_min_s": 0.005} if device != "cpu" else None  # as the seed suite times a GPU
    run = dlbench.run("lstm", backends=[backend], precisions=["fp32"], modes=["forward"], sets=SIZE, device=device,
                      store=store, measure=measure)  # fmt: skip
    (result,) = run.results
    if result.status != "ok":
        raise SystemExit(f"{backend}: {result.status}: {result.error}")
    return float(result.stats["median_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default=",".join(BARE))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "compare.sqlite"
        for backend in args.backends.split(","):
            if not BACKENDS[backend].available()[0]:
                print(f"{backend}: not installed, skipped")
                continue
            bare, ours = [], []
            for _ in range(args.rounds):
                bare.append(bare_median(BARE[backend], args.device))
                ours.append(dlbench_median(backend, store, args.device))
            b, d = statistics.median(bare), statistics.median(ours)
            rows.append((backend, b, d, b / d))
            print(f"{backend:14s} bare {b * 1e3:8.3f} ms   dlbench {d * 1e3:8.3f} ms   ratio bare/dlbench {b / d:.3f}",
                  flush=True)  # fmt: skip
    print("\n| backend | bare loop median (ms) | dlbench median (ms) | ratio bare/dlbench |\n|---|---|---|---|")
    for backend, b, d, r in rows:
        print(f"| {backend} | {b * 1e3:.3f} | {d * 1e3:.3f} | {r:.3f} |")


if __name__ == "__main__":
    main()
