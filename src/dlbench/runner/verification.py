"""Verification inside a run: before the first timed case of each backend × workload × precision × device,
the same worker verifies it at small sizes against the float64 reference; a group that fails is not timed."""

from __future__ import annotations

from typing import Any

from dlbench.core.cases import Case, MeasureConfig
from dlbench.runner.client import WorkerClient
from dlbench.verify import DEFAULT_SIZES


def group_key(case: Case) -> str:
    return f"{case.backend_spec}-{case.workload}-{case.precision}-{case.device}"


def verification_case(case: Case, sizes: dict[str, dict[str, int]] | None = None) -> Case:
    size = (sizes or DEFAULT_SIZES).get(case.workload, DEFAULT_SIZES[case.workload])
    return Case(case.workload, dict(size), case.backend, case.precision, "train", case.device, case.seed,
                dict(case.options), case.env)  # fmt: skip


def verify_with(client: WorkerClient, case: Case, timeout_s: float) -> dict[str, Any]:
    """A verification record: the worker's document flattened (status, errors, passed)."""
    doc = client.run(case, MeasureConfig(), timeout_s, task="verify")
    record: dict[str, Any] = {
        "backend": case.backend_spec, "workload": case.workload, "precision": case.precision, "device": case.device,
        "size": case.size, "status": doc["status"], "error": doc.get("error"), "versions": doc.get("versions", {}),
    }  # fmt: skip
    record.update(doc.get("verification") or {})
    record.setdefault("passed", False)
    if doc["status"] != "ok":
        record["passed"] = False
    return record


def blocked_result(record: dict[str, Any]) -> dict[str, Any] | None:
    """What a timed case becomes when its group's verification did not pass (None: it passed)."""
    if record["status"] == "unsupported":
        return {"status": "unsupported", "error": record.get("error")}
    if record["status"] != "ok":
        return {"status": "error", "error": f"failed verification: {record['status']}: {record.get('error')}"}
    if not record["passed"]:
        return {"status": "error", "error": failure_text(record)}
    return None


def failure_text(record: dict[str, Any]) -> str:
    return (f"failed verification: forward error {record['forward_error']:.2e} (tolerance "
            f"{record['forward_tolerance']:.0e}), worst gradient error {record['worst_grad_error']:.2e} in "
            f"{record['worst_grad']} (tolerance {record['gradient_tolerance']:.0e}); --no-verify times it anyway")
