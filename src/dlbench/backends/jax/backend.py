"""The JAX backend (`jax`): pure functions over a dict of parameters, compiled with `jax.jit`, as a JAX user
writes them.

- params: a dict pytree keyed by the workload's weight names, in the workload's layouts, so `jax.grad` returns
  the gradients under the same names and in the same shapes.
- lstm: `lax.scan` over the time steps. The input projection x_t @ W_ih.T does not depend on h, so the textbook
  form computes it for all steps as one matmul before the scan ("hoisted"); on the CPU at hidden <= 256 XLA runs
  it faster inside the scan body ("per_step"), so that is what option lstm_projection="auto" picks there (the
  measurements are at _PER_STEP_MAX_HIDDEN_CPU below); `--option lstm_projection=hoisted|per_step` forces either.
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
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from dlbench.backends import get_backend
from dlbench.backends.base import Backend, Step
from dlbench.backends.jax import (  # helpers sets XLA_PYTHON_CLIENT_PREALLOCATE, read when jax starts a GPU client
    LSTM_PROJECTIONS,
    helpers,
)
from dlbench.core.cases import Case
from dlbench.workloads import vgg16
from dlbench.workloads.base import Workload

DTYPES: dict[str, Any] = {"fp32": jnp.float32, "fp16": jnp.float16, "bf16": jnp.bfloat16}
_CONV_DIMS = ("NCHW", "OIHW", "NCHW")
_POOL = (1, 1, 2, 2)  # 2x2 window, stride 2, over H and W of NCHW


def lstm(params: dict[str, jax.Array], x: jax.Array, hoist: bool = True) -> jax.Array:
    """x: (seq_len, batch, hidden) -> h_t for every t, (seq_len, batch, hidden); gates (i, f, g, o).

    hoist: compute the input projection x_t @ W_ih.T of every step at once, one (seq·batch, H) x (H, 4H) matmul
    before the recurrence (it does not depend on h); else inside the scan, beside h @ W_hh.T.
    """
    p = params
    if hoist:
        xs = x @ p["weight_ih"].T + (p["bias_ih"] + p["bias_hh"])
    else:
        xs = x

    def cell(carry: tuple[jax.Array, jax.Array], x_t: jax.Array) -> tuple[Any, jax.Array]:
        h, c = carry
        if hoist:
            gates = x_t + h @ p["weight_hh"].T
        else:
            gates = x_t @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]
        i, f, g, o = jnp.split(gates, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    zeros = jnp.zeros((x.shape[1], p["weight_hh"].shape[1]), x.dtype)
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
        self.check_supported(case, workload, DTYPES, MODELS)
        self._device = device = helpers.device(self.device, self.name)
        helpers.full_fp32(device)  # fp32 means fp32, as every backend on CUDA
        self.dtype = dtype = DTYPES[case.precision]
        model = MODELS[workload.name]
        if workload.name == "lstm":
            self.hoist = self.lstm_projection == "hoisted" or (
                self.lstm_projection == "auto"
                and (device.platform != "cpu" or workload.size(case.size)["hidden"] > _PER_STEP_MAX_HIDDEN_CPU)
            )
            model = functools.partial(lstm, hoist=self.hoist)

        # Converted on the host (NumPy rounds to the dtype; ml_dtypes provides bfloat16), put on the device once.
        params = {k: jax.device_put(v.astype(dtype), device) for k, v in weights.items()}
        x = jax.device_put(inputs["x"].astype(dtype), device)
        jax.block_until_ready((params, x))

        if case.mode == "forward":
            forward = jax.jit(model)
            self._compiled = (forward, (params, x))
            return helpers.staged_first_call(self, forward, (params, x), lambda: forward(params, x))

        def loss(p: dict[str, jax.Array], x: jax.Array) -> tuple[jax.Array, jax.Array]:
            out = model(p, x)
            # Reduce in f32, as a user would for a large mean in f16/bf16; the gradient flows back in `dtype`.
            return jnp.mean(out, dtype=jnp.float32), out

        train = jax.jit(jax.value_and_grad(loss, has_aux=True))
        self._compiled = (train, (params, x))

        def train_step() -> tuple[jax.Array, dict[str, jax.Array]]:
            (_, out), grads = train(params, x)
            return out, grads

        return helpers.staged_first_call(self, train, (params, x), train_step)

    # -- measurement ---------------------------------------------------------------------------------------

    def synchronize(self, result: Any = None) -> None:
        if result is not None:
            jax.block_until_ready(result)  # every array of the (output, grads) pytree

    def to_numpy(self, value: Any) -> np.ndarray:
        array = np.asarray(jax.device_get(value))
        return array.astype(np.float32) if array.dtype == jnp.bfloat16 else array  # NumPy has no bfloat16

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
            "conv_dimension_numbers": "/".join(_CONV_DIMS),
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
        return helpers.classify(exc)
