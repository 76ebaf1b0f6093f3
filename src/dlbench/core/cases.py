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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MeasureConfig:
        return cls(**data)


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
