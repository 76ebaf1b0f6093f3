"""The probe's verdicts, decided from what was observed: a layer's error against the float64 reference, the
dtypes it returned, its time against fp32 on the same backend and device, or the framework's error.

- native: runs, returns the type asked, error within the precision's tolerance.
- upcast: runs, within tolerance, but returns a wider type than asked (e.g. float32 from an fp16 layer). Judged
  by what a user can observe: a framework that computes in f32 internally and rounds the result to the type
  asked (XLA and TensorFlow on CPU for f16/bf16 dot and conv) is `native` here.
- wrong: runs, but the error exceeds the tolerance (or is NaN/inf), or it returns a narrower type than asked.
- slow: runs correctly, but its fastest step takes ≥ SLOW_RATIO × the fastest fp32 step of the same layer and
  direction on the same backend and device. The fastest, not the median: on a shared machine it is the step least
  disturbed by other processes (the median and every step time are stored beside it).
- unsupported: the framework raised; its error is quoted.
- error: the probe could not tell (the worker crashed, ran out of memory or timed out).
A cell shows one verdict; where several hold, the first of wrong, slow, upcast wins (the document keeps every
figure). For amp, the gradients are of fp32 master weights and inputs, so float32 gradients are what is asked.

Worker- and parent-side module: standard library only.
"""

from __future__ import annotations

import math
from typing import Any

PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "bf16", "amp-fp16", "amp-bf16")
DIRECTIONS: tuple[str, ...] = ("forward", "backward")
VERDICTS: tuple[str, ...] = ("native", "upcast", "wrong", "slow", "unsupported", "error")
SLOW_RATIO = 10.0

# Relative error ‖out − ref‖/‖ref‖ allowed per precision, forward and backward alike (one layer: no chain of
# max-pool/ReLU decisions as in VGG-16's gradients). About 20 unit roundoffs of the type: fp16 u = 4.9e-4,
# bf16 u = 3.9e-3; fp32 is held to dlbench's 1e-5, the proof of the same math.
TOLERANCE: dict[str, float] = {"fp32": 1e-5, "fp16": 1e-2, "bf16": 8e-2, "amp-fp16": 1e-2, "amp-bf16": 8e-2}
# The compute type each precision asks for (amp: the autocast type; its master weights stay float32).
ASKED: dict[str, str] = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "amp-fp16": "float16",
                         "amp-bf16": "bfloat16"}  # fmt: skip
_BITS = {"float16": 16, "bfloat16": 16, "float32": 32, "float64": 64}


def _or_inf(error: float | None) -> float:
    return math.inf if error is None else error


def expected_dtype(precision: str, direction: str) -> str:
    """What the layer should return: the precision's type; for amp's backward, float32 (master weights)."""
    return "float32" if precision.startswith("amp-") and direction == "backward" else ASKED[precision]


def judge(measured: dict[str, Any], precision: str, direction: str, fp32_time_s: float | None) -> dict[str, Any]:
    """One direction's finding: the worker's measurement plus verdict, tolerance, ratio to fp32 and a message.
    fp32_time_s: the fastest fp32 step of the same layer and direction (None: not known, `slow` not judged).

    `measured` is the worker's document for the direction: status "ok" with errors {name: rel. error},
    dtypes {name: dtype}, time_s (median) and best_s (fastest step), or another status with a message."""
    doc: dict[str, Any] = {k: v for k, v in measured.items() if k != "status"}
    status = measured.get("status")
    if status != "ok":
        verdict = "unsupported" if status == "unsupported" else "error"
        return {**doc, "verdict": verdict, "message": measured.get("message") or status}
    tolerance = TOLERANCE[precision]
    errors: dict[str, float | None] = measured["errors"]
    worst = max(errors, key=lambda k: _or_inf(errors[k]))
    error = errors[worst]
    asked = expected_dtype(precision, direction)
    dtypes: dict[str, str] = measured["dtypes"]
    wider = sorted({d for d in dtypes.values() if _BITS.get(d, 0) > _BITS[asked]})
    narrower = sorted({d for d in dtypes.values() if _BITS.get(d, 99) < _BITS[asked]})
    time_s = measured.get("best_s", measured.get("time_s"))
    ratio = time_s / fp32_time_s if time_s and fp32_time_s else None
    doc.update(error=error, worst=worst, tolerance=tolerance, asked_dtype=asked, ratio_to_fp32=ratio,
               dtype=",".join(sorted(set(dtypes.values()))))  # fmt: skip
    if error is None or not math.isfinite(error) or error > tolerance:
        text = "not finite" if error is None or not math.isfinite(error) else f"{error:.1e}"
        return {**doc, "verdict": "wrong", "message": f"relative error {text} in {worst} > tolerance {tolerance:g}"}
    if narrower:
        return {**doc, "verdict": "wrong", "message": f"returned {', '.join(narrower)} where {asked} was asked"}
    if precision != "fp32" and ratio is not None and ratio >= SLOW_RATIO:
        return {**doc, "verdict": "slow", "message": f"{ratio:.0f}× the fp32 time ({time_s:.2e} s vs "
                                                     f"{fp32_time_s:.2e} s)"}  # fmt: skip
    if wider:
        names = sorted(n for n, d in dtypes.items() if d in wider)
        return {**doc, "verdict": "upcast", "message": f"returned {', '.join(wider)} where {asked} was asked "
                                                       f"({', '.join(names)})"}  # fmt: skip
    return {**doc, "verdict": "native", "message": ""}


def cell_text(direction_doc: dict[str, Any]) -> str:
    """Short text of one verdict for a matrix cell: `native`, `slow 23×`, `unsupported`."""
    verdict = str(direction_doc.get("verdict"))
    ratio = direction_doc.get("ratio_to_fp32")
    return f"slow {ratio:.0f}×" if verdict == "slow" and ratio else verdict
