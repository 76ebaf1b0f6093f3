"""The JAX backend (`jax`): pure functions over a dict of parameters, compiled with `jax.jit`, as a JAX user
writes them.

- params: a dict pytree in the layouts a JAX user holds, converted from the workload's weights once, when the
  model is built (`model_params`, stack.Built.params). `jax.grad` returns the gradients in those layouts; the step
  hands them back as they are (`_Grads`: one view object per step) and only `to_numpy`, outside the timed step,
  converts one to the workload's name and layout (transposing each gradient in every step is work no JAX user does).
- lstm: `lax.scan` over the time steps, with Flax's (in, out) kernels: kernel_ih = weight_ih.T, kernel_hh =
  weight_hh.T, and ONE bias = bias_ih + bias_hh (as Flax's LSTM cells and Keras keep it), whose gradient is
  therefore the gradient of both workload biases. Keeping torch's (out, in) matrices and writing `h @ W.T` in the
  scan body, the previous form, was slower on XLA CPU (jaxlib 0.10.2, seq 30, batch 32, hidden 128, fp32, 1 pinned
  CPU, 5 interleaved rounds on a loaded 2-core machine: forward medians 2.36 ms before, 1.88 ms after; train 11.1 and
  11.6 ms before, 6.5 and 7.6 ms after; hidden 512 forward, hoisted: 45/32 ms before, 41/30 ms after). The input
  projection x_t @ kernel_ih does not depend on h, so the textbook form computes it for all steps as one matmul before
  the scan ("hoisted"); on the CPU at hidden <= 256 XLA runs it faster inside the scan body ("per_step"), so that is
  what option lstm_projection="auto" picks there (the measurements are at _PER_STEP_MAX_HIDDEN_CPU below);
  `--option lstm_projection=hoisted|per_step` forces either.
- the layer stacks (alexnet, overfeat, vgga, googlenet, resnet50, transformer): stack.py, NHWC activations and HWIO /
  (in, out) kernels (why: its docstring), the input transposed to NHWC once, before the step.
- vgg16: `lax.conv_general_dilated` with dimension numbers NCHW/OIHW (the workload's layout) and
  `lax.reduce_window` max-pooling. Dimension numbers are logical: XLA's layout assignment picks the physical
  layout per device, and `settings()` records it from the compiled HLO (XLA CPU: NHWC, "b01f_01io->b01f",
  except 2x2 maps, see below). Feeding it NHWC/HWIO instead measured the same on CPU (process CPU time,
  batch 2 image 32 and batch 4 image 64, forward and train), so the workload's layout stays.
  XLA CPU (jaxlib 0.10.2) runs a 3x3 conv over a 2x2 map (conv5_* at image 32) in a "01fb" layout at ~1 GFLOP/s:
  it takes ~15x longer than the same conv over a 4x4 map (4x the FLOPs), whatever the dimension numbers, and
  dominates VGG-16 at image 32. Small images measure that, not VGG.
- precision: params and input are stored in float32 / float16 / bfloat16. XLA CPU computes dot and convolution
  of f16/bf16 operands in f32 and rounds each result back (bf16 elementwise ops too); `settings()` reads the
  dot/conv types from the compiled HLO. On NVIDIA GPUs from Ampere on, XLA's default precision runs f32
  dot/conv on TF32 units (`default_matmul_precision` None = that default).
- train: `jax.jit(jax.value_and_grad(loss, has_aux=True))`, loss = mean(output) reduced in f32.
First step: jit's stages run one by one and are timed (`first_step_phases`): trace_s (`jitted.trace`: Python
to jaxpr), lower_s (`.lower()`: jaxpr to StableHLO), compile_s (`.compile()`: XLA, or the load of the executable
from a warm persistent cache), then first_execute_s, the jitted function's own first call, which finds that
executable in jit's caches (the timed steps run the same one: a test checks that nothing compiles again).
Persistent compilation cache: off, as is JAX's default, unless option `cache_dir` is given (`dlbench compile`):
then <cache_dir>/jax, with every computation cached whatever its compile time.
Memory: XLA_PYTHON_CLIENT_PREALLOCATE=false (helpers.py sets it unless the user did), so the GPU
allocator grows with need instead of taking 75% of the GPU up front; the peak comes from `memory_stats()`.
Importing this module initializes no JAX backend (no device, no thread pool), so a serving process may fork.
"""

from __future__ import annotations

import functools
import os
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from dlbench.backends import get_backend
from dlbench.backends.base import Backend, Step, exception_chain
from dlbench.backends.jax import (  # helpers sets XLA_PYTHON_CLIENT_PREALLOCATE, read when jax starts a GPU client
    LSTM_PROJECTIONS,
    helpers,
)
from dlbench.backends.jax import stack as jax_stack
from dlbench.backends.jax.stack import KERNEL, SAME, Layout
from dlbench.core.cases import Case
from dlbench.workloads import vgg16
from dlbench.workloads.base import Workload
from dlbench.workloads.convnets import STACKS, StackWorkload

DTYPES: dict[str, Any] = {"fp32": jnp.float32, "fp16": jnp.float16, "bf16": jnp.bfloat16}
_CONV_DIMS = ("NCHW", "OIHW", "NCHW")
_POOL = (1, 1, 2, 2)  # 2x2 window, stride 2, over H and W of NCHW


def lstm(params: dict[str, jax.Array], x: jax.Array, hoist: bool = True) -> jax.Array:
    """x: (seq_len, batch, hidden) -> h_t for every t, (seq_len, batch, hidden); gates (i, f, g, o).
    params: kernel_ih and kernel_hh (hidden, 4·hidden), bias (4·hidden,) (see model_params).

    hoist: compute the input projection x_t @ kernel_ih of every step at once, one (seq·batch, H) x (H, 4H) matmul
    before the recurrence (it does not depend on h); else inside the scan, beside h @ kernel_hh.
    """
    p = params
    xs = x @ p["kernel_ih"] + p["bias"] if hoist else x

    def cell(carry: tuple[jax.Array, jax.Array], x_t: jax.Array) -> tuple[Any, jax.Array]:
        h, c = carry
        gates = (x_t if hoist else x_t @ p["kernel_ih"] + p["bias"]) + h @ p["kernel_hh"]
        i, f, g, o = jnp.split(gates, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    zeros = jnp.zeros((x.shape[1], p["kernel_hh"].shape[0]), x.dtype)
    _, hs = lax.scan(cell, (zeros, zeros), xs)
    return hs


def vgg16_body(params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    """x: (N, 3, H, W) -> the last pool's output (N, 512, H/32, W/32)."""
    convs = iter(vgg16.layers())
    for item in vgg16.CONFIG:
        if item == "M":
            # A Python scalar init with lax.max is what jax recognizes as the differentiable max-pool.
            x = lax.reduce_window(x, -jnp.inf, lax.max, _POOL, _POOL, "VALID")
            continue
        name = next(convs)[0]
        x = lax.conv_general_dilated(
            x, params[f"{name}.weight"], (1, 1), ((1, 1), (1, 1)), dimension_numbers=_CONV_DIMS
        )
        x = jax.nn.relu(x + params[f"{name}.bias"][None, :, None, None])
    return x


MODELS = {"lstm": lstm, "vgg16": vgg16_body}
_STACKS = [w.name for w in STACKS]  # built from their layer records by stack.py

# The LSTM's workload weights -> (the jax parameter that holds each, its Layout): see the module docstring.
_LSTM_GRADS = {"weight_ih": ("kernel_ih", KERNEL), "weight_hh": ("kernel_hh", KERNEL), "bias_ih": ("bias", SAME),
               "bias_hh": ("bias", SAME)}  # fmt: skip


def model_params(workload: str, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The workload's weights as MODELS[workload] takes them (host arrays): the LSTM's in Flax's layout, VGG-16's
    as they are."""
    if workload != "lstm":
        return dict(weights)
    return {"kernel_ih": np.ascontiguousarray(weights["weight_ih"].T),
            "kernel_hh": np.ascontiguousarray(weights["weight_hh"].T),
            "bias": weights["bias_ih"] + weights["bias_hh"]}  # fmt: skip


class _InLayout:
    """A step's array in JAX's layout and the Layout that gives the workload's; applied by to_numpy only."""

    __slots__ = ("value", "layout")

    def __init__(self, value: jax.Array, layout: Layout) -> None:
        self.value, self.layout = value, layout

    def block_until_ready(self) -> _InLayout:  # what jax.block_until_ready calls on a leaf that is no array
        self.value.block_until_ready()
        return self


class _Grads(Mapping[str, Any]):
    """A train step's gradients as jax.grad returned them (keyed by the model's parameters, in their layouts), seen
    under the workload's weight names: an item in another layout comes out as an _InLayout."""

    __slots__ = ("raw", "names")

    def __init__(self, raw: dict[str, jax.Array], names: dict[str, tuple[str, Layout]]) -> None:
        self.raw, self.names = raw, names

    def __getitem__(self, name: str) -> Any:
        key, layout = self.names[name]
        return self.raw[key] if layout is SAME else _InLayout(self.raw[key], layout)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def block_until_ready(self) -> _Grads:
        jax.block_until_ready(self.raw)
        return self


# Option `lstm_projection`: where the LSTM's input projection runs (see lstm()). "auto" hoists it, except on the
# CPU up to this hidden size, where XLA CPU ran the per-step form faster. Measured (jaxlib 0.10.2, AMD EPYC with
# AVX-512, 1 thread, seq_len 30, CPU time of one forward pass, per-step vs hoisted): batch 32, hidden 64: 1.0 vs
# 1.7 ms; 128: 3.3 vs 4.4; 256: 12.6 vs 14.5; 512: 76 vs 58 (batch 8, hidden 512: 36 vs 21). Train time was the
# same either way at 128 and 256. (`scan(unroll=True)` was no answer: 15-90 s to compile train, slower steps.)
_PER_STEP_MAX_HIDDEN_CPU = 256
OPTIONS = tuple(get_backend("jax").options)

_DIM_LABELS = re.compile(r"\sconvolution\([^\n]*dim_labels=(\S+?),")


class JaxBackend(Backend):
    name = "jax"

    def __init__(self, device: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(device, options)
        unknown = sorted(set(self.options) - set(OPTIONS))
        if unknown:
            raise ValueError(f"unknown jax backend option(s) {', '.join(unknown)} (allowed: {', '.join(OPTIONS)})")
        self.lstm_projection = self.options.get("lstm_projection", "auto")
        if self.lstm_projection not in LSTM_PROJECTIONS:
            allowed = ", ".join(LSTM_PROJECTIONS)
            raise ValueError(f"unknown lstm_projection {self.lstm_projection!r} (allowed: {allowed})")
        self.hoist: bool | None = None  # the LSTM's projection in force, once prepared
        self.threads: int | None = None
        self.dtype: Any = None
        self._device: Any = None
        self._compiled: Any = None  # (jitted function, its arguments): read back by settings()
        self._conv_dims: tuple[str, str, str] | None = None  # the model's conv dimension numbers, once prepared
        self._layout_note: str | None = None

    # -- setup ---------------------------------------------------------------------------------------------

    def configure(self, threads: int) -> None:
        if self.cache_dir is not None:
            helpers.enable_persistent_cache(self.cache_dir)
        # No thread knob to set: XLA CPU sizes its intra-op pool (threads named tf_XLAEigen) from the process's CPU
        # affinity, which the worker has already pinned to `threads` CPUs; jax offers no thread knob.
        self.threads = threads

    def prepare(
        self, case: Case, workload: Workload, weights: dict[str, np.ndarray], inputs: dict[str, np.ndarray]
    ) -> Step:
        self.check_supported(case, workload, DTYPES, [*MODELS, *_STACKS])
        self._device = device = helpers.device(self.device, self.name)
        helpers.full_fp32(device)  # fp32 means fp32, as every backend on CUDA
        self.dtype = dtype = DTYPES[case.precision]
        size = workload.size(case.size)
        x_host = inputs["x"]
        output = SAME  # the forward output's Layout
        if isinstance(workload, StackWorkload):
            built = jax_stack.build(workload.layers_for(size), workload.input_shapes(size)["x"])
            model, host, x_host, output = built.apply, built.params(weights), built.input(x_host), built.output
            names = {name: (name, built.layouts[name]) for name in weights}
            self._conv_dims, self._layout_note = jax_stack.CONV_DIMS, jax_stack.LAYOUT_NOTE
        else:
            model, host = MODELS[workload.name], model_params(workload.name, weights)
            names = _LSTM_GRADS if workload.name == "lstm" else {name: (name, SAME) for name in weights}
            if workload.name == "lstm":
                self.hoist = self.lstm_projection == "hoisted" or (
                    self.lstm_projection == "auto"
                    and (device.platform != "cpu" or size["hidden"] > _PER_STEP_MAX_HIDDEN_CPU)
                )
                model = functools.partial(lstm, hoist=self.hoist)
                self._layout_note = "(in, out) kernels and one bias (bias_ih + bias_hh), converted at build"
            else:
                self._conv_dims, self._layout_note = _CONV_DIMS, "the workload's: NCHW activations, OIHW kernels"
        if set(names) != set(weights):
            raise RuntimeError(f"weights do not fit the model: {sorted(set(names) ^ set(weights))}")

        # Converted on the host (NumPy rounds to the dtype; ml_dtypes provides bfloat16), put on the device once.
        params = {k: jax.device_put(v.astype(dtype), device) for k, v in host.items()}
        x = jax.device_put(x_host.astype(dtype), device)
        jax.block_until_ready((params, x))

        def returned(out: jax.Array) -> Any:
            return out if output is SAME else _InLayout(out, output)

        if case.mode == "forward":
            forward = jax.jit(model)
            self._compiled = (forward, (params, x))
            return helpers.staged_first_call(self, forward, (params, x), lambda: returned(forward(params, x)))

        def loss(p: dict[str, jax.Array], x: jax.Array) -> tuple[jax.Array, jax.Array]:
            out = model(p, x)
            # Reduce in f32, as a user would for a large mean in f16/bf16; the gradient flows back in `dtype`.
            return jnp.mean(out, dtype=jnp.float32), out

        train = jax.jit(jax.value_and_grad(loss, has_aux=True))
        self._compiled = (train, (params, x))

        def train_step() -> tuple[Any, _Grads]:
            (_, out), grads = train(params, x)
            return returned(out), _Grads(grads, names)

        return helpers.staged_first_call(self, train, (params, x), train_step)

    # -- measurement ---------------------------------------------------------------------------------------

    def synchronize(self, result: Any = None) -> None:
        if result is not None:
            jax.block_until_ready(result)  # every array of the (output, grads) pytree

    def to_numpy(self, value: Any) -> np.ndarray:
        layout = SAME
        if isinstance(value, _InLayout):
            value, layout = value.value, value.layout
        array = np.asarray(jax.device_get(value))
        array = array.astype(np.float32) if array.dtype == jnp.bfloat16 else array  # NumPy has no bfloat16
        return layout.to_workload(array)

    def dtype_name(self, value: Any) -> str:
        return str((value.value if isinstance(value, _InLayout) else value).dtype)

    def reset_peak_memory(self) -> None:
        # JAX cannot reset a device's peak_bytes_in_use. Each case runs in a process of its own, so the peak is
        # this case's anyway; it includes building the model (params and input on the device).
        pass

    def peak_memory(self) -> dict[str, Any]:
        return helpers.peak_memory(self._device)

    def compile_cache(self) -> dict[str, str]:
        return helpers.persistent_cache()

    def _compiled_hlo(self) -> str | None:
        if self._compiled is None:
            return None
        function, args = self._compiled
        return function.lower(*args).compile().as_text()  # hits jit's cache: the step compiled it already

    def settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "jit": "jax.jit",
            "device": self.device,
            "platform": self._device.platform if self._device is not None else None,
            "device_kind": self._device.device_kind if self._device is not None else None,
            "dtype": jnp.dtype(self.dtype).name if self.dtype is not None else None,
            "threads": self.threads,
            "threads_note": helpers.THREADS_NOTE,
            "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
            "XLA_PYTHON_CLIENT_PREALLOCATE": os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE"),
            "XLA_PYTHON_CLIENT_MEM_FRACTION": os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION"),
            "XLA_PYTHON_CLIENT_ALLOCATOR": os.environ.get("XLA_PYTHON_CLIENT_ALLOCATOR"),
            "x64_enabled": bool(jax.config.jax_enable_x64),
            # None = XLA's default: full f32 on CPU; on NVIDIA GPUs from Ampere on, TF32 for f32 dot/conv.
            "default_matmul_precision": jax.config.jax_default_matmul_precision,
            "conv_dimension_numbers": "/".join(self._conv_dims) if self._conv_dims else None,
            "weight_layout": self._layout_note,
            "lstm_projection_option": self.lstm_projection,
            "lstm_input_projection": None if self.hoist is None else ("hoisted" if self.hoist else "per_step"),
            # A persistent cache (off unless a directory is set) would make first_step_s a cache hit.
            "compilation_cache_dir": jax.config.jax_compilation_cache_dir,
        }
        if os.path.isdir("/proc/self/task"):  # Linux: count XLA CPU's pool threads, started by the first step
            names = Counter(helpers.thread_name(t) for t in os.listdir("/proc/self/task"))
            settings["xla_eigen_threads"] = names.get("tf_XLAEigen", 0)
        try:
            hlo = self._compiled_hlo()
        except Exception as exc:  # noqa: BLE001 — e.g. the case failed to compile: keep the other settings
            hlo, settings["hlo_error"] = None, f"{type(exc).__name__}: {exc}"[:300]
        if hlo is not None:
            settings.update(helpers.compute_settings(hlo, jnp.dtype(self.dtype).name if self.dtype else "float32"))
            labels = sorted(set(_DIM_LABELS.findall(hlo)))
            if labels:
                settings["hlo_conv_dim_labels"] = ",".join(labels)  # the physical layout XLA chose
        return settings

    def versions(self) -> dict[str, str]:
        versions = helpers.versions()
        if self._device is not None:
            versions["platform_version"] = str(self._device.client.platform_version)
        return versions

    def classify(self, exc: BaseException) -> str | None:
        # jax.nn.dot_product_attention asks XLA for an f16 dot accumulating in f32 (DotAlgorithmPreset.F16_F16_F32),
        # which XLA CPU refuses when it lowers the step (jaxlib 0.10.2): the transformer in fp16 has no CPU kernel.
        if any("is not supported by dot_general on CPU" in str(e) for e in exception_chain(exc)):
            return "unsupported"
        return helpers.classify(exc)
