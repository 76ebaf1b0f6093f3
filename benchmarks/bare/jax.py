"""A single LSTM layer's forward pass in plain JAX, as a user would write and time it outside dlbench.

Gates (i, f, g, o) as in PyTorch, zero initial state, time-major input (seq_len, batch, hidden); fp32, CPU.
Weights stored (in, out), as Flax and JAX users keep kernels, so the step multiplies without a transpose.
    python benchmarks/bare/jax.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import numpy as np

# This file is named jax.py: run as a script, its folder leads sys.path and `import jax` would import itself.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402


def lstm(params, x):
    def cell(carry, x_t):
        h, c = carry
        gates = x_t @ params["kernel_ih"] + params["bias_ih"] + h @ params["kernel_hh"] + params["bias_hh"]
        i, f, g, o = jnp.split(gates, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    zeros = jnp.zeros(x.shape[1:], x.dtype)
    return jax.lax.scan(cell, (zeros, zeros), x)[1]


def median_forward_s(seq_len: int = 30, batch: int = 32, hidden: int = 128, iters: int = 200) -> float:
    rng = np.random.default_rng(0)
    scale = 1 / np.sqrt(hidden)
    params = {
        "kernel_ih": rng.standard_normal((hidden, 4 * hidden), dtype=np.float32) * scale,
        "kernel_hh": rng.standard_normal((hidden, 4 * hidden), dtype=np.float32) * scale,
        "bias_ih": rng.standard_normal(4 * hidden, dtype=np.float32) * scale,
        "bias_hh": rng.standard_normal(4 * hidden, dtype=np.float32) * scale,
    }
    params = jax.device_put(params)
    x = jax.device_put(rng.standard_normal((seq_len, batch, hidden), dtype=np.float32))
    forward = jax.jit(lstm)
    for _ in range(10):  # the first call compiles
        forward(params, x).block_until_ready()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        forward(params, x).block_until_ready()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def median_forward_cuda_s(seq_len: int = 30, batch: int = 32, hidden: int = 128, blocks: int = 30,
                          steps: int = 100) -> float:  # fmt: skip
    """On a GPU: blocks of steps between two block_until_ready calls (JAX has no device events), fp32 at XLA's
    highest matmul precision (no TF32), as dlbench runs it."""
    jax.config.update("jax_default_matmul_precision", "highest")
    rng = np.random.default_rng(0)
    scale = 1 / np.sqrt(hidden)
    names = {"kernel_ih": (hidden, 4 * hidden), "kernel_hh": (hidden, 4 * hidden), "bias_ih": (4 * hidden,),
             "bias_hh": (4 * hidden,)}  # fmt: skip
    gpu = jax.devices("gpu")[0]
    params = jax.device_put({k: rng.standard_normal(v, dtype=np.float32) * scale for k, v in names.items()}, gpu)
    x = jax.device_put(rng.standard_normal((seq_len, batch, hidden), dtype=np.float32), gpu)
    forward = jax.jit(lstm)
    for _ in range(20):
        forward(params, x).block_until_ready()
    times = []
    for _ in range(blocks):
        start = time.perf_counter()
        for _ in range(steps):
            y = forward(params, x)
        y.block_until_ready()
        times.append((time.perf_counter() - start) / steps)
    return statistics.median(times)


if __name__ == "__main__":
    print(f"{median_forward_s() * 1e3:.3f} ms")
