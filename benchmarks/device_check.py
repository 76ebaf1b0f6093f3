"""The device check (issue 13): dlbench's CUDA path, end to end, on one NVIDIA GPU, in at most ~9.5 minutes.

The steps' time limits add up to 575 s, inside the device tool's 600 s per command.

Run on the GPU machine from the repository root, after installing over its own frameworks:

    make install SYSTEM=1 && .venv/bin/python benchmarks/device_check.py --out docs/results/<device>-<date>

Steps (each one a subprocess with its own time limit; a step that fails is reported and the next one runs):
1. preflight — nvidia-smi, Python and framework versions, what each framework sees, the fp32 state after
   dlbench's full_fp32() (torch: fp32_precision "ieee"; JAX: matmul precision "highest"), NVML's per-process
   memory for this process (the figure the memory column prefers), cuDNN's version;
2. verify — `dlbench verify --device cuda` for torch and JAX at fp32, fp16 and bf16, both workloads;
3. the seed's tables — `dlbench run seed --backends torch,jax` (LSTM seq {30,60} × batch {32,128} × hidden
   {128,512,1024}; VGG-16 fp32/fp16 at batch {32,64,128}, 224×224) into a store beside the outputs, printed in
   the seed's two table layouts (markdown); one process per case and 0.3 s of timing, to fit the device time.
4. VGG-16 at batch {64,128}, fp32/fp16, under `--emulate titanx-pascal` (12 GiB): where the seed ran out;
5. the bare-loop ratio on the GPU: benchmarks/compare_idiomatic.py --device cuda (LSTM 30×32×128 forward).
README "The device check" lists what each step should print.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

PREFLIGHT = r"""
import json, os, platform
found = {"python": platform.python_version()}
try:
    import torch
    from dlbench.backends.torch import helpers as th
    found["torch"] = {"version": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
                      "available": torch.cuda.is_available(),
                      "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    th.full_fp32()
    found["torch"]["fp32 after full_fp32"] = th.tf32_settings()
except Exception as exc:
    found["torch"] = f"{type(exc).__name__}: {exc}"
try:
    import jax
    from dlbench.backends.jax import helpers as jh
    gpu = jax.devices("gpu")[0]
    jh.full_fp32(gpu)
    found["jax"] = {"version": jax.__version__, "device": str(gpu),
                    "matmul precision after full_fp32": jax.config.jax_default_matmul_precision}
except Exception as exc:
    found["jax"] = f"{type(exc).__name__}: {exc}"
try:
    import torch
    from dlbench.measure.memory import NvmlPeak
    keep = torch.ones(64 << 20, device="cuda")  # 256 MiB, so that this process shows in NVML's list
    peak = NvmlPeak()
    peak.start()
    found["nvml this process"] = peak.stop()
except Exception as exc:
    found["nvml this process"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(found, indent=1, default=str))
seen = (isinstance(found["torch"], dict) and found["torch"]["available"]) or isinstance(found["jax"], dict)
raise SystemExit(0 if seen else "no framework here sees a CUDA GPU")
"""


def step(title: str, command: list[str], limit_s: float, out: Path, log: str) -> bool:
    print(f"\n## {title}\n$ {' '.join(command)}", flush=True)
    start = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=limit_s)
        text, ok = done.stdout + done.stderr[-4000:], done.returncode == 0
    except subprocess.TimeoutExpired as exc:
        text, ok = f"{exc.stdout or ''}\nTIMED OUT after {limit_s:.0f} s", False
    (out / log).write_text(text if isinstance(text, str) else text.decode())
    print(text[-6000:], flush=True)
    print(f"-> {'ok' if ok else 'FAILED'} in {time.monotonic() - start:.0f} s (full output: {out / log})", flush=True)
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the outputs (created)")
    parser.add_argument("--backends", default="torch,jax")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    dlbench = [sys.executable, "-m", "dlbench.cli"]
    store = str(args.out / "device.sqlite")
    results = {}
    if shutil.which("nvidia-smi"):
        results["nvidia-smi"] = step("nvidia-smi", ["nvidia-smi"], 15, args.out, "nvidia-smi.txt")
    results["preflight"] = step("preflight", [sys.executable, "-c", PREFLIGHT], 60, args.out, "preflight.json")
    if not results["preflight"]:
        sys.exit("device check: the preflight failed (no GPU seen?): nothing further to check")
    results["verify"] = step("verify on cuda", [*dlbench, "verify", "--device", "cuda", "--backends", args.backends,
                             "--precisions", "fp32,fp16,bf16", "--format", "markdown"], 100, args.out, "verify.md")
    # One process per case and 0.3 s of timing (the suite asks 3 and 1 s): 72 cases fit the device budget; the
    # figures are the device path's, not yet the study's (no significance from one process).
    seed = [*dlbench, "run", "seed", "--backends", args.backends, "--repeat", "1", "--min-time", "0.3",
            "--store", store, "--format", "markdown"]  # fmt: skip
    results["seed"] = step("the seed's tables", seed, 210, args.out, "seed.md")
    titanx = [*dlbench, "run", "vgg16", "--device", "cuda", "--backends", args.backends, "--precisions", "fp32,fp16",
              "--set", "batch=64,128", "--set", "image=224", "--emulate", "titanx-pascal", "--repeat", "1",
              "--min-time", "0.3", "--store", store, "--format", "markdown"]  # fmt: skip
    results["titanx"] = step("VGG-16 on an emulated 12 GiB Titan X", titanx, 100, args.out, "titanx-pascal.md")
    bare = [sys.executable, "benchmarks/compare_idiomatic.py", "--device", "cuda", "--backends", args.backends,
            "--rounds", "2"]  # fmt: skip
    results["bare"] = step("dlbench against a plain loop on the GPU", bare, 90, args.out, "bare-loop.md")
    print("\n## summary\n" + "\n".join(f"- {name}: {'ok' if ok else 'FAILED'}" for name, ok in results.items()))
    sys.exit(0 if all(results.values()) else 1)


if __name__ == "__main__":
    main()
