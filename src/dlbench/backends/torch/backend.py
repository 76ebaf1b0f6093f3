"""PyTorch backends, eager (`torch`) and `torch.compile` (`torch-compile`), written as a PyTorch user would.

- lstm: `nn.LSTM(H, H)`, time-major, called with no state (zero initial state); output = the whole sequence.
- vgg16: `nn.Sequential` of `nn.Conv2d(cin, cout, 3, padding=1)` + `nn.ReLU(inplace=True)` and
  `nn.MaxPool2d(2, 2)`, its modules named after the workload's layers (`conv1_1`, ...), so that its
  state-dict keys are the workload's weight names.
- precision: model and input converted to fp32 / fp16 / bf16 (pure, no autocast). Whatever torch cannot do
  in that type on that device fails with torch's own message, classified as `unsupported`.
- cuda: `cudnn.benchmark = True`; TF32 off for fp32 (cuDNN defaults it on), recorded by `settings()`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from dlbench.backends.base import Backend, Step
from dlbench.backends.torch import helpers
from dlbench.backends.torch import stack as torch_stack
from dlbench.core.cases import Case
from dlbench.workloads import vgg16
from dlbench.workloads.base import Workload
from dlbench.workloads.convnets import STACKS, StackWorkload

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

# nn.LSTM's parameter names (layer 0) for the workload's weight names; gate order (i, f, g, o) is the same.
_LSTM_NAMES = {name: f"{name}_l0" for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}


def _build_lstm(size: dict[str, int]) -> tuple[nn.Module, dict[str, str], Callable[[nn.Module, Any], Any]]:
    h = size["hidden"]
    model = nn.LSTM(input_size=h, hidden_size=h, num_layers=1)
    return model, _LSTM_NAMES, lambda m, x: m(x)[0]  # (output, (h_n, c_n)) -> output, (seq, batch, hidden)


def _build_vgg16(size: dict[str, int]) -> tuple[nn.Module, dict[str, str], Callable[[nn.Module, Any], Any]]:
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    convs = iter(vgg16.layers())
    block = 1
    for item in vgg16.CONFIG:
        if item == "M":
            modules[f"pool{block}"] = nn.MaxPool2d(2, 2)
            block += 1
            continue
        name, cin, cout = next(convs)
        modules[name] = nn.Conv2d(cin, cout, 3, padding=1)
        modules[f"relu{name[4:]}"] = nn.ReLU(inplace=True)
    model = nn.Sequential(modules)
    names = {key: key for key, _ in model.named_parameters()}  # conv1_1.weight, conv1_1.bias, ...
    return model, names, lambda m, x: m(x)


_BUILDERS = {"lstm": _build_lstm, "vgg16": _build_vgg16}
_STACKS = [w.name for w in STACKS]  # built from their layer records by stack.py


class TorchBackend(Backend):
    name = "torch"
    mode = "eager"

    def __init__(self, device: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(device, options)
        self.dtype: torch.dtype | None = None

    # -- setup ---------------------------------------------------------------------------------------------

    def configure(self, threads: int) -> None:
        torch.set_num_threads(threads)

    def _torch_device(self) -> torch.device:
        helpers.check_device(self.device, self.name)
        if self.device == "cuda":
            torch.backends.cudnn.benchmark = True
            helpers.full_fp32()  # fp32 means fp32, as every backend on CUDA
        return torch.device(self.device)

    def wrap(self, model: nn.Module) -> Callable[..., Any]:
        """The callable that runs the model: the module itself in eager mode."""
        return model

    def prepare(
        self, case: Case, workload: Workload, weights: dict[str, np.ndarray], inputs: dict[str, np.ndarray]
    ) -> Step:
        self.check_supported(case, workload, DTYPES, [*_BUILDERS, *_STACKS])
        device = self._torch_device()
        self.dtype = dtype = DTYPES[case.precision]
        size = workload.size(case.size)

        if isinstance(workload, StackWorkload):
            model, param_names = torch_stack.build(workload.layers_for(size), workload.input_shapes(size)["x"])
            call: Callable[[nn.Module, Any], Any] = torch_stack.call
        else:
            model, param_names, call = _BUILDERS[workload.name](size)
        # load_state_dict copies into the parameters: no tensor here shares memory with the caller's arrays.
        state = {param_names[k]: torch.from_numpy(v) for k, v in weights.items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        # Every parameter loaded, nothing else given; buffers (batch norm's running statistics) keep their start.
        buffers = {name for name, _ in model.named_buffers()}
        if unexpected or set(missing) - buffers:
            raise RuntimeError(f"weights do not fit the model: missing {missing}, unexpected {unexpected}")
        model.to(device=device, dtype=dtype)
        # Batch norm computes batch statistics in both modes (the workloads' definition): train() for any model
        # that has one; otherwise eval() for forward, as users time inference.
        model.train(case.mode == "train" or isinstance(workload, StackWorkload) and bool(workload.batchnorms(size)))
        # copy=True: for fp32 on cpu `.to` would otherwise return a view of the caller's NumPy array.
        x = torch.from_numpy(inputs["x"]).to(device=device, dtype=dtype, copy=True)
        names = list(weights)  # the workload's weight names, in its order
        params = [model.get_parameter(param_names[k]) for k in names]
        run = self.wrap(model)
        self.synchronize()

        if case.mode == "forward":

            def step() -> Any:
                with torch.no_grad():  # inference as users time it
                    return call(run, x)

            return self.first_call(step)

        def train_step() -> Any:
            out = call(run, x)
            # The workload's loss is mean(output). Reduce in fp32: a user would not accumulate a large mean in
            # fp16/bf16, and the cast is one cheap elementwise op; its gradient, 1/numel, is cast back to the
            # output's dtype for the backward pass.
            loss = out.float().mean()
            grads = torch.autograd.grad(loss, params)
            return out.detach(), dict(zip(names, grads, strict=True))

        return self.first_call(train_step)

    def first_call(self, step: Step) -> Step:
        """`step`, its first call timed as phase first_execute_s (eager: there is nothing to compile)."""
        return self.time_first_call(step)

    # -- measurement ---------------------------------------------------------------------------------------

    def synchronize(self, result: Any = None) -> None:
        helpers.synchronize(self.device)

    def to_numpy(self, value: Any) -> np.ndarray:
        return value.detach().float().cpu().numpy()  # float(): bf16 has no NumPy dtype

    def dtype_name(self, value: Any) -> str:
        return str(value.dtype).removeprefix("torch.")

    def reset_peak_memory(self) -> None:
        helpers.reset_peak_memory(self.device)

    def peak_memory(self) -> dict[str, Any]:
        return helpers.peak_memory(self.device)

    def settings(self) -> dict[str, Any]:
        dtype = str(self.dtype).removeprefix("torch.") if self.dtype is not None else None
        return {"mode": self.mode, "device": self.device, "dtype": dtype, **helpers.settings(self.device)}

    def versions(self) -> dict[str, str]:
        return helpers.versions()

    def classify(self, exc: BaseException) -> str | None:
        return helpers.classify(exc)


class TorchCompileBackend(TorchBackend):
    """The same modules wrapped in `torch.compile` (default mode, inductor); compile time lands in the first
    step. A compilation failure (no C++ compiler, ...) propagates: there is no silent fall-back to eager.

    Dynamo itself may decline code and run it eager (torch 2.x declines nn.LSTM unless the experimental
    `torch._dynamo.config.allow_rnn` is set), so `settings()` counts the graphs compiled and the graph
    breaks: a "compiled" result that ran eager says so.

    First step (`first_step_phases`), from torch's own compile timers (torch._dynamo.utils
    .compilation_time_metrics, what `torch._dynamo.utils.compile_times()` prints), as they grew during the first
    call: dynamo_s (bytecode analysis, FX graph capture, guards: dynamo's whole frame compile less its backend's
    part), backend_compile_s (AOTAutograd and Inductor for the forward graph: lowering, C++/Triton code
    generation and compilation, or loading them from Inductor's caches) and, for train, backward_compile_s
    (Inductor compiles the backward graph lazily, at the first backward). The rest is running the code.
    prepare_torch_compile_s (in prepare(), part of setup_s): the torch.compile call itself, mostly importing
    dynamo and inductor on first use.
    Option `cache_dir`: TORCHINDUCTOR_CACHE_DIR=<cache_dir>/torchinductor (FX graph and AOTAutograd caches,
    compiled kernels; Triton's cache lies inside it unless TRITON_CACHE_DIR is set), read when Inductor
    first compiles, so set here, before that.
    """

    name = "torch-compile"
    mode = "compile"
    compile_backend = "inductor"
    # torch's compile timers (dynamo_timed keys) and the phase each one is: the backend's part is nested in
    # dynamo's frame compile, so dynamo_s is the difference; the lazy backward compile lies outside both.
    _TIMERS = {"frame": "_compile.compile_inner", "backend": "OutputGraph.call_user_compiler",
               "backward": "backward._backward_impl"}  # fmt: skip

    def __init__(self, device: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(device, options)
        self._counters_before: dict[str, dict[str, int]] = {}
        self.inductor_cache: str | None = None
        if self.cache_dir is not None:
            import os

            self.inductor_cache = os.path.join(self.cache_dir, "torchinductor")
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = self.inductor_cache

    def first_call(self, step: Step) -> Step:
        """`step`, whose first call records how torch's compile timers grew meanwhile (see the class docstring)."""
        from torch._dynamo.utils import compilation_time_metrics as timers

        first = True

        def totals() -> dict[str, float]:
            return {name: sum(timers.get(key, ())) for name, key in self._TIMERS.items()}

        def staged() -> Any:
            nonlocal first
            if not first:
                return step()
            first = False
            before = totals()
            result = step()
            self.synchronize(result)
            grown = {name: value - before[name] for name, value in totals().items()}
            present = {name for name, key in self._TIMERS.items() if key in timers}
            if "frame" in present:
                self.phases["dynamo_s"] = grown["frame"] - grown["backend"]
            if "backend" in present:
                self.phases["backend_compile_s"] = grown["backend"]
            if "backward" in present:
                self.phases["backward_compile_s"] = grown["backward"]
            return result

        return staged

    def compile_cache(self) -> dict[str, str]:
        from torch._inductor.runtime.cache_dir_utils import cache_dir

        return {"what": "TorchInductor's caches (FX graphs, AOTAutograd, compiled kernels)", "dir": cache_dir()}

    def wrap(self, model: nn.Module) -> Callable[..., Any]:
        # Start from a fresh dynamo, as a new process would: having declined one module (nn.LSTM) it would
        # run later modules eager too. Changes nothing in a worker, which runs one case per process.
        with self.phase("prepare_torch_compile_s"):  # mostly importing dynamo and inductor: seconds
            import torch._dynamo  # here, not at the top: the eager backend does not pay for its import

            torch._dynamo.reset()
            self._counters_before = _dynamo_counters()
            return torch.compile(model, backend=self.compile_backend)

    def settings(self) -> dict[str, Any]:
        import torch._dynamo
        import torch._inductor.config

        settings = {**super().settings(), "compile_mode": "default", "compile_backend": self.compile_backend}
        settings["dynamo.allow_rnn"] = torch._dynamo.config.allow_rnn
        # With the on-disk cache warm from an earlier run, the first step loads code instead of compiling it.
        settings["inductor.fx_graph_cache"] = torch._inductor.config.fx_graph_cache
        now, before = _dynamo_counters(), self._counters_before

        def new(group: str, key: str) -> int:
            return now.get(group, {}).get(key, 0) - before.get(group, {}).get(key, 0)

        breaks = {reason: new("graph_break", reason) for reason in now.get("graph_break", {})}
        settings["compiled_graphs"] = new("stats", "unique_graphs")
        settings["fx_graph_cache_hits"] = new("inductor", "fxgraph_cache_hit")
        settings["fx_graph_cache_misses"] = new("inductor", "fxgraph_cache_miss")
        settings["graph_breaks"] = sum(breaks.values())
        reasons = sorted({reason.splitlines()[0][:200] for reason, count in breaks.items() if count > 0})
        if reasons:
            settings["graph_break_reasons"] = reasons[:5]
        return settings


def _dynamo_counters() -> dict[str, dict[str, int]]:
    """A copy of dynamo's process-wide counters (graphs compiled, graph breaks by reason)."""
    from torch._dynamo.utils import counters

    return {group: dict(values) for group, values in counters.items()}
