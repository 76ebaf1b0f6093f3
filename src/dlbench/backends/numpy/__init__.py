"""NumPy: the `numpy` backend, the workloads' own math (dlbench.workloads.numpy_math) in fp32 or fp16 on the CPU.

Not a framework a user would choose: the float64 reference's code run in lower precision, and the harness's own
test backend (its fault-injection options make a worker crash, hang or fail for real). No layers, no usability
probes: `dlbench probe` and `dlbench usability` say so for it. peak.py: `dlbench peak`'s fp32 BLAS product and copy.
"""

from __future__ import annotations

from dlbench.backends.registry import BackendInfo, Framework

FAULTS: tuple[str, ...] = ("crash", "exit", "hang", "raise", "oom")  # the numpy backend's `fault` option
FRAMEWORK = Framework(
    name="numpy", label="NumPy", requires=("numpy",), install="pip install numpy",
    backends=(
        BackendInfo("numpy", "dlbench.backends.numpy.backend:NumpyBackend", "NumPy", harness=True,
                    description="float64 reference (verify) and a harness backend that needs no framework",
                    options={"fault": FAULTS, "sleep_s": (), "hold_mib_per_sample": ()}),
    ),
    peak="dlbench.backends.numpy.peak",
)  # fmt: skip
