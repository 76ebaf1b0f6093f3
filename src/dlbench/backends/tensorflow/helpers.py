"""What every backend that runs on TensorFlow shares (`tensorflow`, `tensorflow-xla`, `keras-tensorflow`): thread
pools and GPU memory growth, the case's device, synchronization, the allocator's peak, the runtime settings and
versions in force, tf.function's first call in two timed stages, and how TensorFlow says out of memory or
"no kernel" (with the reason first, where TF's graph errors bury it). Worker-side only.
"""

from __future__ import annotations

import os

# Read by TF's C++ logging at import: keep INFO and WARNING chatter out of the case logs. A user's value wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from typing import Any  # noqa: E402

import tensorflow as tf  # noqa: E402

from dlbench.backends.base import Backend, Step, Unsupported, exception_chain, first_call  # noqa: E402
from dlbench.measure import device_memory  # noqa: E402

DEVICE_CAP: dict[str, Any] = {}  # what --device-memory did in this process (settings() records it)


def configure(threads: int, device: str) -> bool:
    """Both thread pools sized to the worker's CPUs (TF's own default on a machine with that many cores); on the
    cpu device the GPUs hidden (no GPU context, no GPU memory for a CPU case), else memory growth on every GPU (TF
    would otherwise map nearly all GPU memory at start, and peak figures would mean nothing). Possible only
    before TF's runtime starts, which is true in a worker: False where it had already started (a second backend
    in one process, e.g. tests), and settings() then record what is in force instead of what was asked."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        gpus = tf.config.list_physical_devices("GPU")
        cap = device_memory.cap_bytes()
        if device == "cpu":
            tf.config.set_visible_devices([], "GPU")
        elif cap is not None and gpus:  # --device-memory: a logical device of SIZE (exclusive of memory growth)
            limit_mib = cap >> 20
            tf.config.set_logical_device_configuration(
                gpus[0], [tf.config.LogicalDeviceConfiguration(memory_limit=limit_mib)])
            DEVICE_CAP.update(cap_bytes=cap, mechanism=f"tf.config logical device, memory_limit={limit_mib} MiB")
        else:
            for gpu in gpus:
                tf.config.experimental.set_memory_growth(gpu, True)
        return True
    except RuntimeError:
        return False


def device_name(device: str, backend: str) -> str:
    """TF's name of the case's device ("/CPU:0", "/GPU:0"); Unsupported where TF sees none."""
    if device == "cpu":
        return "/CPU:0"
    if device != "cuda":
        raise Unsupported(f"device {device!r} is not implemented by the {backend} backend")
    if not tf.config.list_logical_devices("GPU"):
        build = tf.sysconfig.get_build_info()
        raise Unsupported(
            f"TensorFlow {tf.__version__} sees no GPU: "
            + (
                f"built for CUDA {build.get('cuda_version')}, but no usable GPU/driver was found"
                if build.get("is_cuda_build")
                else "this is a CPU-only build (tensorflow-cpu)"
            )
        )
    return "/GPU:0"


def _on_gpu(device: str) -> bool:
    return device == "cuda" and bool(tf.config.list_logical_devices("GPU"))


def synchronize(device: str) -> None:
    # On CPU a tf.function call returns after its kernels have run (TF's executor is synchronous unless
    # set_synchronous_execution(False)), so there is nothing to wait for. GPU kernels run on CUDA streams:
    # sync_devices() is TF's documented wait, "primarily useful for measuring performance".
    if _on_gpu(device):
        tf.test.experimental.sync_devices()


def reset_peak_memory(device: str) -> None:
    if _on_gpu(device):
        tf.config.experimental.reset_memory_stats("GPU:0")


def peak_memory(device: str) -> dict[str, Any]:
    """TF's GPU allocator's peak over the timed steps (reset_peak_memory ran before them), named as every
    framework's (measure/memory.py: DEVICE_FIGURES); {} on the CPU, where the worker measures RSS itself."""
    if not _on_gpu(device):
        return {}
    info = tf.config.experimental.get_memory_info("GPU:0")
    return {"device_allocated_peak_bytes": int(info["peak"]), "device_peak_covers": "timed steps",
            "device_peak_source": "tf.config.experimental.get_memory_info('GPU:0')['peak']"}  # fmt: skip


def full_fp32() -> None:
    """fp32 means fp32 on CUDA: TF runs fp32 matmuls and convolutions in TF32 by default on Ampere and later
    (`tf32` is a precision of its own in dlbench's vocabulary). Recorded as `tensor_float_32_execution`."""
    tf.config.experimental.enable_tensor_float_32_execution(False)


def settings(device: str) -> dict[str, Any]:
    """TF's runtime settings in force: thread pools, oneDNN, Grappler's auto-jit, determinism; on CUDA, memory
    growth and TF32."""
    # Private modules, but the only readers of these two states.
    from tensorflow.python.framework import config as tf_config
    from tensorflow.python.util import _pywrap_util_port

    threading = tf.config.threading
    found: dict[str, Any] = {
        # 0 means TF's default: the number of CPUs in the affinity mask.
        "intra_op_parallelism_threads": threading.get_intra_op_parallelism_threads(),
        "inter_op_parallelism_threads": threading.get_inter_op_parallelism_threads(),
        "onednn": bool(_pywrap_util_port.IsMklEnabled()),
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset (oneDNN on for x86 CPUs)"),
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL"),
        "grappler_auto_jit": tf.config.optimizer.get_jit() or "off",
        "op_determinism": tf_config.is_op_determinism_enabled(),
    }
    if device == "cuda":
        gpus = tf.config.list_physical_devices("GPU")
        found["memory_growth"] = [tf.config.experimental.get_memory_growth(g) for g in gpus]
        found["tensor_float_32_execution"] = tf.config.experimental.tensor_float_32_execution_enabled()
        if DEVICE_CAP:
            found["device_memory_cap"] = dict(DEVICE_CAP)
    return found


def versions() -> dict[str, str]:
    build = tf.sysconfig.get_build_info()
    return {
        "tensorflow": tf.__version__,
        "cuda": str(build.get("cuda_version", "")),
        "cudnn": str(build.get("cudnn_version", "")),
    }


def traced_first_call(backend: Backend, function: Any, args: tuple[Any, ...], step: Step) -> Step:
    """`step` (which calls the tf.function `function(*args)`), whose first call first traces `function` for
    `args` alone (phase trace_s: Python to a graph, with autograph and the gradient tape), then calls `step`
    (phase first_call_s: TF instantiates the traced graph, runs Grappler's rewrites, with jit_compile has XLA
    compile it, and runs it, all inside one C++ call that Python cannot see into). Later calls find the traced
    graph in the function's cache, as they would without this; they cost one Python call and a flag test more."""

    def staged() -> Any:
        with backend.phase("trace_s"):
            function.get_concrete_function(*args)
        with backend.phase("first_call_s"):
            result = step()
            backend.synchronize(result)
        return result

    return first_call(step, staged)


# No kernel for this dtype/device: "No registered 'X' OpKernel", XLA's "Detected unsupported operations", and
# placement's "Could not find device for node: ... MatrixDeterminant[T=DT_HALF]".
_NO_KERNEL_TEXT = ("No registered", "unsupported operations", "Could not find device for node")


# Out of memory that TensorFlow does not raise as ResourceExhaustedError: cuDNN finding no convolution algorithm
# whose workspace fits ("No algorithm worked", a NotFoundError, under memory pressure), a tensor whose allocation
# failed ("Dst tensor is not initialized", an InternalError), and cuBLAS/cuDNN failing to allocate.
_OOM_TEXT = ("No algorithm worked", "Dst tensor is not initialized", "CUBLAS_STATUS_ALLOC_FAILED",
             "CUDNN_STATUS_ALLOC_FAILED", "failed to allocate memory")  # fmt: skip


def classify(exc: BaseException) -> str | None:
    for e in exception_chain(exc):
        if isinstance(e, (tf.errors.ResourceExhaustedError, MemoryError)):
            return "oom"
        if isinstance(e, tf.errors.OpError) and any(text in str(e) for text in _OOM_TEXT):
            return "oom"
        if isinstance(e, tf.errors.UnimplementedError):
            return "unsupported"
        if isinstance(e, (tf.errors.NotFoundError, tf.errors.InvalidArgumentError)) and any(
            text in str(e) for text in _NO_KERNEL_TEXT
        ):
            return "unsupported"
    return None


def op_error_text(exc: BaseException) -> str:
    """`Type: reason` for a TensorFlow error. A graph's op error ("Graph execution error: Detected at node ...
    (most recent call last): File ...") carries the Python stack that built the node before the kernel's own
    reason: the reason goes first, the node and stack after it."""
    text = str(exc)
    lines = text.splitlines()
    stack = [i for i, line in enumerate(lines) if line.lstrip().startswith('File "')]
    if isinstance(exc, tf.errors.OpError) and stack:
        reason = "\n".join(line for line in lines[stack[-1] + 1 :] if line.strip()).strip()
        if reason:
            text = f"{reason}\n{text}"
    return f"{type(exc).__name__}: {text}".strip()
