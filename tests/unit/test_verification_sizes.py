"""Off the CPU, each timed size is verified too, at batch 1 (issue 13): cuDNN and XLA choose other algorithms at
the sizes timed than at the small verification sizes. On the CPU nothing changes. A size whose check fails is not
timed; the other sizes of its group still are."""

from __future__ import annotations

from typing import Any

from tests.unit.test_disturbance import FakeSession

from dlbench.core.cases import Case, MeasureConfig
from dlbench.runner.sweep import sweep
from dlbench.runner.verification import DEFAULT_SIZES, group_key, verification_cases


def _lstm(hidden: int, device: str = "cuda", batch: int = 32) -> Case:
    return Case("lstm", {"seq_len": 30, "batch": batch, "hidden": hidden}, "torch", "fp32", "forward", device)


def test_a_gpu_case_is_checked_at_its_own_size_at_batch_1_and_a_cpu_case_is_not() -> None:
    (small,) = verification_cases(_lstm(128, "cpu"))
    assert small == (group_key(_lstm(128, "cpu")), small[1]) and small[1].size == DEFAULT_SIZES["lstm"]
    checks = verification_cases(_lstm(128))
    assert [key for key, _ in checks] == ["torch-lstm-fp32-cuda", "torch-lstm-fp32-cuda@seq_len=30,batch=1,hidden=128"]
    assert checks[1][1].size == {"seq_len": 30, "batch": 1, "hidden": 128} and checks[1][1].mode == "train"
    at_small = Case("lstm", dict(DEFAULT_SIZES["lstm"], batch=1), "torch", "fp32", "forward", "cuda")
    assert len(verification_cases(at_small)) == 2  # batch 1 differs from the small size's batch 3
    assert len(verification_cases(Case("lstm", dict(DEFAULT_SIZES["lstm"]), "torch", "fp32", "train", "cuda"))) == 2


class VerifyingSession(FakeSession):
    """Verifies by a rule: the check at hidden=`bad` fails, every other passes."""

    def __init__(self, bad: int) -> None:
        super().__init__()
        self.bad, self.verified_sizes, self.records = bad, [], {}

    def available(self, case: Case) -> tuple[bool, str]:
        return True, ""

    def verifications(self) -> dict[str, Any]:
        return dict(self.records)

    def verify(self, case: Case, timeout_s: float) -> dict[str, Any]:
        self.verified_sizes.append(case.size)
        passed = case.size.get("hidden") != self.bad
        return {"status": "ok", "passed": passed, "forward_error": 0.0 if passed else 1.0, "forward_tolerance": 1e-5,
                "worst_grad": "w", "worst_grad_error": 0.0, "gradient_tolerance": 1e-4}  # fmt: skip

    def add_verification(self, key: str, record: dict[str, Any]) -> None:
        self.records[key] = record


def test_a_size_that_fails_its_check_is_not_timed_and_the_others_are() -> None:
    session = VerifyingSession(bad=512)
    plan = [_lstm(128), _lstm(512), Case("lstm", _lstm(128).size, "torch", "fp32", "train", "cuda")]
    sweep(session, plan, MeasureConfig(min_iters=5), 60.0, verify=True)  # type: ignore[arg-type]
    assert session.verified_sizes == [DEFAULT_SIZES["lstm"], {"seq_len": 30, "batch": 1, "hidden": 128},
                                      {"seq_len": 30, "batch": 1, "hidden": 512}]  # each once, the train case reuses
    statuses = {case.key: session.results[case.key]["status"] for case in plan}
    assert statuses == {plan[0].key: "ok", plan[1].key: "error", plan[2].key: "ok"}
    assert "failed verification" in session.results[plan[1].key]["error"]
