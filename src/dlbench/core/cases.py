"""A case is the unit that is measured: workload × size × backend × precision × mode × device.

Worker-side module: standard library only, so that a worker in another Python environment can import it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

MODES: tuple[str, ...] = ("forward", "train")
DEVICES: tuple[str, ...] = ("cpu", "cuda")
STATUSES: tuple[str, ...] = ("ok", "oom", "error", "timeout", "unsupported")


@dataclass(frozen=True)
class MeasureConfig:
    """How long to measure one case. The defaults suit a GPU; suites scale them down for CPUs."""

    min_time_s: float = 1.0  # keep timing at least this long ...
    min_iters: int = 10  # ... and at least this many iterations ...
    max_time_s: float = 10.0  # ... but never longer than this (the cap wins over min_iters)
    max_iters: int = 100_000
    warmup_iters: int = 1  # untimed steps after the first one (whose time is kept as first_step_s)
    target_rel_ci: float = 0.01  # stop early once the 95% CI of the median is within ±1% of it
    # Steps shorter than a device's launch-and-synchronise latency (a small LSTM step on a GPU: tens of µs) are
    # timed in blocks between synchronisations, each block lasting at least this long; a sample is then a block's
    # time ÷ its steps, and min_iters/max_iters count blocks (measure/timing.py). 0: one step per clock read.
    block_min_s: float = 0.0
    # Trust on a machine that is not quiet (measure/disturbance.py, runner/sweep.py):
    repeat: int = 1  # independent repetitions: each case timed in this many processes, in rounds across the sweep
    retries: int = 2  # a disturbed window is measured again later in the sweep, at most this many more times
    max_outside_share: float = 0.10  # disturbed: others used more than this share of the case's CPUs meanwhile
    min_cpu_share: float = 0.0  # disturbed: the case got less than this share of its CPUs (0: not checked)
    wait_quiet_s: float = 0.0  # before each timed case, wait up to this long for its CPUs to be quiet
    # Rounds beyond the second run only while the sweep is projected to end within this many seconds (0: no
    # budget): a default suite asks for repeat = 3 and keeps 2 on a machine too slow for 3 (runner/sweep.py).
    budget_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MeasureConfig:
        return cls(**data)

    def problem(self) -> str:
        """What is wrong with these settings ("" when nothing is): `max_iters=0 (must be an integer ≥ 1)`."""
        import math

        rules: dict[str, tuple[type, float, float]] = {
            "min_time_s": (float, 0, math.inf), "max_time_s": (float, 0, math.inf), "min_iters": (int, 1, math.inf),
            "max_iters": (int, 1, math.inf), "warmup_iters": (int, 0, math.inf), "target_rel_ci": (float, 0, 1),
            "block_min_s": (float, 0, 60),
            "repeat": (int, 1, 100), "retries": (int, 0, 100), "max_outside_share": (float, 0, 1),
            "min_cpu_share": (float, 0, 1), "wait_quiet_s": (float, 0, 3600), "budget_s": (float, 0, 86400),
        }  # fmt: skip
        for name, (kind, low, high) in rules.items():
            value = getattr(self, name)
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or not math.isfinite(value) or (kind is int and value != int(value)) \
                    or not low <= value <= high:
                what = "an integer" if kind is int else "a number"
                bounds = f"≥ {low:g}" if high == math.inf else f"from {low:g} to {high:g}"
                return f"{name}={value!r} (must be {what} {bounds})"
        if self.max_time_s < self.min_time_s:
            return f"max_time_s={self.max_time_s:g} < min_time_s={self.min_time_s:g}"
        return ""


@dataclass(frozen=True)
class Case:
    workload: str
    size: dict[str, int]
    backend: str
    precision: str
    mode: str
    device: str = "cpu"
    seed: int = 0
    # Backend options, e.g. the numpy harness backend's fault injection. Part of the case's identity.
    options: dict[str, Any] = field(default_factory=dict)
    # The tag of `--backends torch@old`: the same backend run by another interpreter (dlbench.envs), kept apart
    # from the untagged one. Part of the case's identity; "" (the default) leaves keys as they always were.
    env: str = ""

    @property
    def backend_spec(self) -> str:
        """`torch`, or `torch@old` for a tagged environment."""
        return f"{self.backend}@{self.env}" if self.env else self.backend

    @property
    def key(self) -> str:
        """A readable, unique id: `lstm-seq_len=30,batch=32,hidden=128-torch-fp32-forward-cpu`."""
        size = ",".join(f"{k}={v}" for k, v in self.size.items())
        opts = "".join(f"-{k}={v}" for k, v in sorted(self.options.items()))
        return f"{self.workload}-{size}-{self.backend_spec}-{self.precision}-{self.mode}-{self.device}{opts}"

    @property
    def batch(self) -> int:
        return int(self.size["batch"])

    def to_dict(self) -> dict[str, Any]:
        env = {"env": self.env} if self.env else {}
        return {
            **env,
            "workload": self.workload,
            "size": dict(self.size),
            "backend": self.backend,
            "precision": self.precision,
            "mode": self.mode,
            "device": self.device,
            "seed": self.seed,
            "options": dict(self.options),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Case:
        return cls(
            workload=data["workload"],
            size={k: int(v) for k, v in data["size"].items()},
            backend=data["backend"],
            precision=data["precision"],
            mode=data["mode"],
            device=data.get("device", "cpu"),
            seed=int(data.get("seed", 0)),
            options=dict(data.get("options", {})),
            env=str(data.get("env", "")),
        )

    def __hash__(self) -> int:
        return hash(self.key)


def split_spec(spec: str) -> tuple[str, str]:
    """`torch@old` → ("torch", "old"); `torch` → ("torch", "")."""
    backend, _, env = spec.partition("@")
    return backend, env
