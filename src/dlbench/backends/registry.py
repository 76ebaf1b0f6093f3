"""The typed records of the backend registry: what one framework folder under backends/ offers.

Each folder `backends/<framework>/` declares one `Framework` in its `__init__.py` (which imports no framework);
`dlbench.backends` lists the folders and derives every other list from their records: the backends, the layers
`dlbench probe` runs, the usability probes and export paths, the legacy environment recipes, the environment
variables a fingerprint records, the bare scripts. A capability a record does not declare is `unsupported`, with
the reason `missing()` gives, in every command's output: never a silent omission.
Worker-side module: standard library only.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Recipe:
    """A legacy Python environment a framework needs (`dlbench envs create NAME`): what pip installs there, the
    environment variables its workers get, and the Python versions to base it on, best first."""

    requirements: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    description: str = ""
    # Python versions to base the env on, best first, when one is found (else dlbench's own interpreter): e.g.
    # Theano 1.0.5's compiled scan loop (Cython 0.28 output) builds on 3.9/3.10, not on 3.11.
    pythons: tuple[str, ...] = ()


@dataclass(frozen=True)
class BackendInfo:
    """One backend: a framework's implementation of the workloads that users choose by name."""

    name: str
    target: str  # "module:Class", imported only in a worker process
    label: str  # how tables name it
    description: str = ""
    requires: tuple[str, ...] = ()  # top-level modules that must be importable; () = the framework's
    install: str = ""  # the command that makes it available; "" = the framework's
    seed_row: str | None = None  # the seed's framework this backend continues (Torch, TensorFlow, Theano)
    harness: bool = False  # not a framework: left out of default runs (the numpy reference)
    fork_safe: bool = True  # may serve cases from one process that imported the framework and forks
    # Installs only beside an old NumPy (`dlbench envs create NAME`): left out of default runs unless a managed env
    # of its name exists, instead of an `unsupported` row in every run.
    needs_env: bool = False
    # dlbench probe: the variant of the framework's layers module this backend runs (how it compiles them); None:
    # no layers (its probe cells are `unsupported`, saying so).
    layers: str | None = None
    # Compiles every layer × precision afresh (minutes on a small CPU): `dlbench probe` runs it only when named.
    recompiles: bool = False
    # dlbench usability: how its step is compiled, in words ("" = no usability probes), and its export paths.
    idiom: str = ""
    exports: tuple[str, ...] = ()
    # dlbench usability's code metrics: the functions of the target's module that are each workload's model code
    # ({"lstm": (...), "vgg16": (...)}) and that build the timed step from it ({"step": (...)}); read from source.
    code_parts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    framework: str = ""  # the folder it lives in: set by Framework
    # The backend options (`--option KEY=VALUE`) it takes: KEY -> its allowed words, or () for a number ≥ 0. Checked
    # before anything runs (backends.check_options); the backend's class checks them again in its worker.
    options: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def available(self) -> tuple[bool, str]:
        """(True, "") or (False, reason with the install command). Uses find_spec: never imports a framework."""
        for module in self.requires:
            if importlib.util.find_spec(module) is None:
                return False, f"{module} is not installed: {self.install}"
        return True, ""

    def load(self) -> type:
        module, _, cls = self.target.partition(":")
        return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]

    @property
    def module(self) -> str:
        """The module that holds the backend's class (where its code_parts are read)."""
        return self.target.partition(":")[0]


@dataclass(frozen=True)
class Framework:
    """One folder under backends/: its backends and what else it offers, declared once."""

    name: str  # the folder
    label: str
    requires: tuple[str, ...]  # top-level modules its backends need (each backend may add more)
    install: str
    backends: tuple[BackendInfo, ...]
    layers: str | None = None  # module of its layers for `dlbench probe` (build(...)), None: none
    usability: str | None = None  # module of its debugging and export probes for `dlbench usability`, None: none
    recipe: Recipe | None = None  # the legacy environment it needs (`dlbench envs create <name>`)
    # Environment variables that change what the framework does, recorded in every run's fingerprint when set.
    env_vars: tuple[str, ...] = ()
    bare: str | None = None  # its bare one-LSTM-layer script in benchmarks/bare/ (for dlbench usability)
    # dlbench peak: module whose matmul(precision, device, n) and copy(device, nbytes) build the steps that measure
    # the device's matrix-multiply FLOP/s and memory bandwidth through this framework; None: it offers none.
    peak: str | None = None

    def __post_init__(self) -> None:
        # Each backend knows its folder and inherits the framework's requirements and install command.
        filled = tuple(
            replace(b, framework=self.name, requires=b.requires or self.requires, install=b.install or self.install)
            for b in self.backends
        )
        object.__setattr__(self, "backends", filled)


__all__ = ["BackendInfo", "Framework", "Recipe"]
