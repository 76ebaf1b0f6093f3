"""TensorFlow 2 backends, written as a TensorFlow user writes them: tf ops on tf.Variables inside `tf.function`
(`tensorflow`, TF's graph executor with Grappler), and the same functions with `jit_compile=True` (`tensorflow-xla`).

- lstm: the input projection of every step is one matmul before the recurrence (it does not depend on h), then
  the recurrent matmul and the gates per step, gates (i, f, g, o) as the workload's (and Keras') order. Weights
  in TF's (in, out) layout: kernel = weight_ih.T, recurrent_kernel = weight_hh.T, and ONE bias = bias_ih + bias_hh
  (as Keras keeps it), whose gradient is therefore the gradient of both workload biases. The time loop is a Python
  loop over the static sequence length, unrolled into the graph (Keras' `unroll=True`) for the graph executor:
  measured on CPU it beats `tf.scan`/`tf.while_loop` by 3-10%. Under XLA it is `tf.scan`: the unrolled graph
  took XLA 26 s (seq 30, hidden 128) and 79 s (seq 60, hidden 256) to compile for train, and ran slower.
  No cuDNN LSTM: TensorFlow has no public cuDNN RNN op outside Keras (`keras-tensorflow` is that path).
- vgg16: `tf.nn.conv2d` (HWIO filters) + `tf.nn.bias_add` + `tf.nn.relu`, `tf.nn.max_pool2d`. NHWC on CPU: TF's
  own CPU kernels refuse NCHW ("The Conv2D op currently only supports the NHWC tensor format on the CPU", fp16);
  fp32 NCHW runs only through oneDNN, and measured the same as NHWC. NCHW on GPU (cuDNN's native layout, and the
  workload's: no input transpose). Input and filters are transposed once, at build time.
- the layer stacks (the CNNs alexnet, overfeat, vgga, googlenet, resnet50, and the transformer block): built from
  their layer records by stack.py, with the same ops, layouts and conversions as VGG-16 here (its docstring has
  the details; a (batch, seq, d) sequence has no layout to choose).
- outputs and gradients come back from the timed step in TF's layouts, as `_InLayout` (the tensor and the
  permutation to the workload's layout); only `to_numpy` transposes. Transposing in every step is work no TF user
  does.
- precision: variables and input stored in float32 / float16 / bfloat16, no mixed-precision policy. On this
  CPU build every op of both workloads has fp16 and bf16 kernels (forward and gradient); TF's CPU matmul and
  conv accumulate their sums in f32 and round the result (settings() probes and records it). Where oneDNN
  declines fp16 (an AVX-512 CPU without the FP16 extensions, as the one this was written on), TF logs "oneDNN
  supports DT_HALF only on platforms with AVX-512. Falling back to the default Eigen-based implementation" and
  fp16 runs TF's Eigen kernels.
- loss = mean(output) reduced in f32, as torch.py does. No optimizer step.
- threads: intra-op = inter-op = the worker's CPU count, set in configure() before TF's runtime starts (they
  cannot change after). TF's default for both (0) picks from the CPU count itself; an explicit number is recorded.
  inter-op 1 vs the CPU count measured the same here (VGG-16, 2 cores), within a noisy machine's spread.
- first step (`first_step_phases`): trace_s, `get_concrete_function` (Python to a graph: autograph, the tape),
  then first_call_s, the first call, in which TF instantiates the graph, Grappler rewrites it, XLA compiles it
  (tensorflow-xla) and it runs: one C++ call that Python cannot see into. The plain `tensorflow` backend has no
  persistent cache (every process traces and optimizes again); tensorflow-xla's option `cache_dir` keeps XLA's.
- GPU: memory growth on every GPU (else TF maps nearly all GPU memory at start and peak figures mean nothing);
  TF32 off for fp32 (TF enables it by default on Ampere+: `fp32` here is fp32). On device `cpu`, GPUs are hidden.
Importing this module starts no TF runtime (no tensor, no device, no thread pool), so a serving process may fork.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# isort: off
from dlbench.backends.tensorflow import helpers  # first: it sets TF_CPP_MIN_LOG_LEVEL, read when TF is imported
import numpy as np
import tensorflow as tf

# isort: on
from dlbench.backends.base import Backend, Step
from dlbench.backends.tensorflow import stack as tf_stack
from dlbench.core.cases import Case
from dlbench.workloads import vgg16
from dlbench.workloads.base import Workload
from dlbench.workloads.convnets import STACKS, StackWorkload

DTYPES: dict[str, tf.DType] = {"fp32": tf.float32, "fp16": tf.float16, "bf16": tf.bfloat16}
_OIHW_FROM_HWIO = (3, 2, 0, 1)
_NCHW_FROM_NHWC = (0, 3, 1, 2)


@dataclass(frozen=True)
class _InLayout:
    """A step's tensor in TF's layout, and the permutation that gives the workload's (or, for a linear kernel whose
    rows were reordered, stack.FlatRows); applied by to_numpy only."""

    value: tf.Tensor
    perm: tuple[int, ...] | tf_stack.FlatRows


@dataclass
class _Model:
    variables: list[tf.Variable]
    forward: Callable[[tf.Tensor], tf.Tensor]
    x: tf.Tensor
    grads: list[tuple[str, int, tf_stack.ToWorkload]]  # (workload weight name, variable index, permutation)
    output_perm: tuple[int, ...] | None
    notes: dict[str, Any]


def _lstm(x: tf.Tensor, kernel: tf.Tensor, recurrent_kernel: tf.Tensor, bias: tf.Tensor, unroll: bool) -> tf.Tensor:
    """x: (seq_len, batch, hidden) -> h_t for every t, (seq_len, batch, hidden); zero initial state."""
    seq_len, batch, hidden = x.shape
    x_gates = tf.reshape(tf.matmul(tf.reshape(x, (-1, hidden)), kernel) + bias, (seq_len, batch, 4 * hidden))

    def cell(h: tf.Tensor, c: tf.Tensor, gates: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        i, f, g, o = tf.split(gates + tf.matmul(h, recurrent_kernel), 4, axis=1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        return tf.sigmoid(o) * tf.tanh(c), c

    zeros = tf.zeros((batch, hidden), x.dtype)
    if not unroll:
        hs, _ = tf.scan(lambda state, gates: cell(*state, gates), x_gates, initializer=(zeros, zeros))
        return hs
    h, c, hs = zeros, zeros, []
    # unstack, not x_gates[t]: the gradient of a slice is a full-size scatter per step (3x slower train).
    for gates in tf.unstack(x_gates):
        h, c = cell(h, c, gates)
        hs.append(h)
    return tf.stack(hs)


def _build_lstm(weights: dict[str, np.ndarray], inputs: dict[str, np.ndarray], dtype: tf.DType, gpu: bool,
                jit: bool) -> _Model:  # fmt: skip
    def var(array: np.ndarray, name: str) -> tf.Variable:
        return tf.Variable(tf.cast(array, dtype), name=name)

    variables = [
        var(weights["weight_ih"].T, "kernel"),
        var(weights["weight_hh"].T, "recurrent_kernel"),
        var(weights["bias_ih"] + weights["bias_hh"], "bias"),  # summed in fp32, rounded once
    ]
    unroll = not jit
    return _Model(
        variables=variables,
        forward=lambda x: _lstm(x, *variables, unroll=unroll),
        x=tf.cast(inputs["x"], dtype),  # time-major, as the workload's
        grads=[("weight_ih", 0, (1, 0)), ("weight_hh", 1, (1, 0)), ("bias_ih", 2, None), ("bias_hh", 2, None)],
        output_perm=None,
        notes={"lstm_loop": "unrolled Python loop in the graph" if unroll else "tf.scan", "cudnn_lstm": False},
    )


def _build_vgg16(weights: dict[str, np.ndarray], inputs: dict[str, np.ndarray], dtype: tf.DType, gpu: bool,
                 jit: bool) -> _Model:  # fmt: skip
    data_format = "NCHW" if gpu else "NHWC"
    variables: list[tf.Variable] = []
    grads: list[tuple[str, int, tuple[int, ...] | None]] = []
    for name, _, _ in vgg16.layers():
        grads.append((f"{name}.weight", len(variables), _OIHW_FROM_HWIO))
        variables.append(tf.Variable(tf.cast(weights[f"{name}.weight"].transpose(2, 3, 1, 0), dtype), name=name))
        grads.append((f"{name}.bias", len(variables), None))
        variables.append(tf.Variable(tf.cast(weights[f"{name}.bias"], dtype), name=f"{name}_bias"))

    def forward(x: tf.Tensor) -> tf.Tensor:
        params = iter(variables)
        for item in vgg16.CONFIG:
            if item == "M":
                x = tf.nn.max_pool2d(x, 2, 2, "VALID", data_format=data_format)
            else:
                kernel, bias = next(params), next(params)
                x = tf.nn.conv2d(x, kernel, 1, "SAME", data_format=data_format)
                x = tf.nn.relu(tf.nn.bias_add(x, bias, data_format=data_format))
        return x

    x = inputs["x"] if gpu else inputs["x"].transpose(0, 2, 3, 1)
    return _Model(
        variables=variables,
        forward=forward,
        x=tf.cast(x, dtype),
        grads=grads,
        output_perm=None if gpu else _NCHW_FROM_NHWC,
        notes={"data_format": data_format, "filter_format": "HWIO"},
    )


def _build_stack(workload: StackWorkload, size: dict[str, int], weights: dict[str, np.ndarray],
                 inputs: dict[str, np.ndarray], dtype: tf.DType, gpu: bool) -> _Model:  # fmt: skip
    data_format = "NCHW" if gpu else "NHWC"  # as VGG-16's
    built = tf_stack.build(workload.layers_for(size), workload.input_shapes(size)["x"], weights, dtype, data_format)
    image = inputs["x"].ndim == 4  # else (batch, seq, d): the transformer block's
    x = inputs["x"] if gpu or not image else inputs["x"].transpose(0, 2, 3, 1)
    image_out = len(workload.output_shape(size)) == 4
    return _Model(variables=built.variables, forward=built.forward, x=tf.cast(x, dtype), grads=built.grads,
                  output_perm=_NCHW_FROM_NHWC if image_out and not gpu else None, notes=built.notes)  # fmt: skip


_BUILDERS = {"lstm": _build_lstm, "vgg16": _build_vgg16}
_STACKS = [w.name for w in STACKS]  # built from their layer records by stack.py


def _accumulation_probe(dtype: tf.DType, device: str, jit: bool) -> str:
    """The type TF's matmul and conv accumulate in for `dtype`: a sum of 4096 ones is 4096 in f32, but
    stops at 2048 in fp16 (and at 256 in bf16), where adding 1 no longer changes the sum."""
    results = {}
    with tf.device(device):
        ones = tf.ones((1, 4096), dtype)
        image = tf.ones((1, 1, 1, 4096), dtype)
        for op, run in (
            ("matmul", lambda a: tf.matmul(a, a, transpose_b=True)),
            ("conv2d", lambda a: tf.nn.conv2d(a, tf.reshape(a, (1, 1, 4096, 1)), 1, "SAME")),
        ):
            run = tf.function(run, jit_compile=jit, autograph=False)
            total = float(tf.reshape(run(ones if op == "matmul" else image), [-1])[0])
            results[op] = "f32" if total == 4096 else dtype.name
    return ", ".join(f"{op}: {kind}" for op, kind in results.items())


class TensorFlowBackend(Backend):
    name = "tensorflow"
    jit_compile = False

    def __init__(self, device: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(device, options)
        self.dtype: tf.DType | None = None
        self.threads: int | None = None
        self.threads_applied: bool | None = None
        self.device_name = "/CPU:0"
        self.notes: dict[str, Any] = {}

    # -- setup ---------------------------------------------------------------------------------------------

    def configure(self, threads: int) -> None:
        self.threads = threads
        self.threads_applied = helpers.configure(threads, self.device)

    def prepare(
        self, case: Case, workload: Workload, weights: dict[str, np.ndarray], inputs: dict[str, np.ndarray]
    ) -> Step:
        self.check_supported(case, workload, DTYPES, [*_BUILDERS, *_STACKS])
        device = helpers.device_name(self.device, self.name)
        gpu = device.startswith("/GPU")
        if gpu:
            helpers.full_fp32()  # fp32 means fp32, as every backend on CUDA
        self.dtype = dtype = DTYPES[case.precision]
        self.device_name = device
        with tf.device(device):  # variables and input live on the case's device
            if isinstance(workload, StackWorkload):
                model = _build_stack(workload, workload.size(case.size), weights, inputs, dtype, gpu)
            else:
                model = _BUILDERS[workload.name](weights, inputs, dtype, gpu, self.jit_compile)
        self.notes = model.notes
        variables, forward, x = model.variables, model.forward, model.x
        out_perm = model.output_perm

        if case.mode == "forward":

            @tf.function(jit_compile=self.jit_compile)
            def infer(x: tf.Tensor) -> tf.Tensor:
                with tf.device(device):
                    return forward(x)

            def step() -> Any:
                out = infer(x)
                return out if out_perm is None else _InLayout(out, out_perm)

            return helpers.traced_first_call(self, infer, (x,), step)

        @tf.function(jit_compile=self.jit_compile)
        def train(x: tf.Tensor) -> tuple[tf.Tensor, list[tf.Tensor]]:
            with tf.device(device), tf.GradientTape() as tape:
                out = forward(x)
                # Reduce in f32: a user would not accumulate a large mean in fp16/bf16 (as torch.py does).
                loss = tf.reduce_mean(tf.cast(out, tf.float32))
            return out, tape.gradient(loss, variables)

        grad_map = model.grads

        def train_step() -> Any:
            out, grads = train(x)
            return (
                out if out_perm is None else _InLayout(out, out_perm),
                {name: grads[i] if perm is None else _InLayout(grads[i], perm) for name, i, perm in grad_map},
            )

        return helpers.traced_first_call(self, train, (x,), train_step)

    # -- measurement ---------------------------------------------------------------------------------------

    def synchronize(self, result: Any = None) -> None:
        helpers.synchronize(self.device)

    def to_numpy(self, value: Any) -> np.ndarray:
        perm = None
        if isinstance(value, _InLayout):
            value, perm = value.value, value.perm
        array = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
        if array.dtype not in (np.float16, np.float32, np.float64):
            array = array.astype(np.float32)  # bfloat16 (ml_dtypes) is not a NumPy float type
        if isinstance(perm, tf_stack.FlatRows):
            return np.ascontiguousarray(perm(array))
        return array if perm is None else np.ascontiguousarray(array.transpose(perm))

    def dtype_name(self, value: Any) -> str:
        return str((value.value if isinstance(value, _InLayout) else value).dtype.name)

    def reset_peak_memory(self) -> None:
        helpers.reset_peak_memory(self.device)

    def peak_memory(self) -> dict[str, Any]:
        return helpers.peak_memory(self.device)

    def settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "mode": "tf.function(jit_compile=True)" if self.jit_compile else "tf.function",
            "device": self.device,
            "dtype": self.dtype.name if self.dtype is not None else None,
            "threads_requested": self.threads,
            "threads_applied": self.threads_applied,
            **helpers.settings(self.device),
            **self.notes,
        }
        if self.jit_compile:
            settings["TF_XLA_FLAGS"] = os.environ.get("TF_XLA_FLAGS", "")
            settings["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "")
        if self.dtype in (tf.float16, tf.bfloat16):
            settings["accumulation"] = _accumulation_probe(self.dtype, self.device_name, self.jit_compile)
        return settings

    def versions(self) -> dict[str, str]:
        return helpers.versions()

    def classify(self, exc: BaseException) -> str | None:
        return helpers.classify(exc)

    def describe_error(self, exc: BaseException) -> str:
        return helpers.op_error_text(exc)


class TensorFlowXLABackend(TensorFlowBackend):
    """The same functions compiled by XLA (`tf.function(jit_compile=True)`); compile time lands in the first
    step. The LSTM loop is `tf.scan` here (see the module's docstring).

    Option `cache_dir`: TF's XLA persistent cache (TF_XLA_FLAGS --tf_xla_persistent_cache_directory, read when
    TF first compiles with XLA, so set here, before that) in <cache_dir>/tf-xla: the compiled executables, which
    a later process loads instead of compiling (tracing and Grappler still run). Loading one, XLA CPU logs an
    error-level line that "prefer-no-scatter"/"prefer-no-gather" are not host features: those are tuning hints
    of the compiler, not instruction sets, and the same machine compiled the entry."""

    name = "tensorflow-xla"
    jit_compile = True

    def __init__(self, device: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(device, options)
        self.xla_cache: str | None = None
        if self.cache_dir is not None:
            self.xla_cache = os.path.join(self.cache_dir, "tf-xla")
            flags = os.environ.get("TF_XLA_FLAGS", "")
            os.environ["TF_XLA_FLAGS"] = f"{flags} --tf_xla_persistent_cache_directory={self.xla_cache}".strip()

    def compile_cache(self) -> dict[str, str]:
        if self.xla_cache is None:
            return {}
        return {"what": "TensorFlow's XLA persistent cache (compiled executables)", "dir": self.xla_cache}
