"""The workloads' math in plain NumPy, once: forward and hand-written backward of every piece the workloads and
the probe's layers are made of (LSTM, 3x3 convolution, 2x2 max-pool), and the workloads composed from them.

Every function is dtype-generic: it computes in the dtype of the arrays it is given (float64 for the reference
that `dlbench verify`, `dlbench probe` and the tests compare every framework against, see reference.py; float32
or float16 for the numpy backend). Nothing here upcasts behind the caller's back, so the numpy backend's fp16
results are honestly fp16: every array is stored in float16 and every operation's result is rounded to float16.

The workloads' loss is `mean(output)` (see base.py), so the gradient that flows into the output is 1/size in
every element. Backward passes return gradients w.r.t. the weights, and w.r.t. the input where asked
(`input_grad=True`: the probe's layers differentiate their inputs too; no workload needs d(input)).

Worker-side module: NumPy and the standard library only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlbench.workloads.vgg16 import CONFIG
from dlbench.workloads.vgg16 import layers as vgg16_layers

Arrays = dict[str, np.ndarray]
Cache = dict[str, Any]


def sigmoid(x: np.ndarray) -> np.ndarray:
    # 1/(1+exp(-x)) overflows exp in float16 for x < -11 (a RuntimeWarning, an error under pytest);
    # the tanh form is the same function and never overflows.
    return 0.5 * (1.0 + np.tanh(0.5 * x))


# ---------------------------------------------------------------------------------------------------------
# LSTM: one layer, gates (i, f, g, o), zero initial state, time-major. See workloads/lstm.py.
# ---------------------------------------------------------------------------------------------------------


def lstm_forward(weights: Arrays, x: np.ndarray) -> tuple[np.ndarray, Cache]:
    """x: (seq_len, batch, hidden) -> h_t for every t, (seq_len, batch, hidden); plus what backward needs."""
    w_ih, w_hh = weights["weight_ih"], weights["weight_hh"]
    b_ih, b_hh = weights["bias_ih"], weights["bias_hh"]
    seq_len, batch, _ = x.shape
    H = w_hh.shape[1]  # hidden size
    # The input projection does not depend on the recurrence: one big matmul for all steps at once.
    x_gates = x @ w_ih.T + b_ih  # (seq_len, batch, 4H)

    # hs[t] and cs[t] are the state *before* step t, so hs[0] = cs[0] = 0 and hs[1:] is the output.
    hs = np.zeros((seq_len + 1, batch, H), dtype=x.dtype)
    cs = np.zeros((seq_len + 1, batch, H), dtype=x.dtype)
    acts = np.empty((seq_len, batch, 4 * H), dtype=x.dtype)  # activated gates i, f, g, o per step
    tanh_cs = np.empty((seq_len, batch, H), dtype=x.dtype)
    for t in range(seq_len):
        gates = x_gates[t] + hs[t] @ w_hh.T + b_hh
        i, f = sigmoid(gates[:, 0:H]), sigmoid(gates[:, H : 2 * H])
        g, o = np.tanh(gates[:, 2 * H : 3 * H]), sigmoid(gates[:, 3 * H : 4 * H])
        cs[t + 1] = f * cs[t] + i * g
        tanh_cs[t] = np.tanh(cs[t + 1])
        hs[t + 1] = o * tanh_cs[t]
        acts[t] = np.concatenate([i, f, g, o], axis=1)
    cache = {"x": x, "hs": hs, "cs": cs, "acts": acts, "tanh_cs": tanh_cs}
    return hs[1:], cache


def lstm_backward(weights: Arrays, cache: Cache, d_output: np.ndarray, input_grad: bool = False) -> Arrays:
    """Full backpropagation through time. d_output: d(loss)/d(h_t) for every t, (seq_len, batch, hidden)."""
    w_ih, w_hh = weights["weight_ih"], weights["weight_hh"]
    x, hs, cs, acts, tanh_cs = cache["x"], cache["hs"], cache["cs"], cache["acts"], cache["tanh_cs"]
    seq_len, batch, H = d_output.shape
    d_gates = np.empty((seq_len, batch, 4 * H), dtype=d_output.dtype)  # d(loss)/d(pre-activation gates)
    dh_next = np.zeros((batch, H), dtype=d_output.dtype)  # gradient reaching h_t through step t+1
    dc_next = np.zeros((batch, H), dtype=d_output.dtype)  # gradient reaching c_t through step t+1
    for t in reversed(range(seq_len)):
        i, f, g, o = (acts[t, :, k * H : (k + 1) * H] for k in range(4))
        dh = d_output[t] + dh_next
        dc = dc_next + dh * o * (1.0 - tanh_cs[t] ** 2)  # h = o·tanh(c)
        # c = f·c_prev + i·g; then through each gate's non-linearity (σ' = σ(1-σ), tanh' = 1 - tanh²).
        d_gates[t, :, 0:H] = dc * g * i * (1.0 - i)
        d_gates[t, :, H : 2 * H] = dc * cs[t] * f * (1.0 - f)
        d_gates[t, :, 2 * H : 3 * H] = dc * i * (1.0 - g**2)
        d_gates[t, :, 3 * H : 4 * H] = dh * tanh_cs[t] * o * (1.0 - o)
        dh_next = d_gates[t] @ w_hh
        dc_next = dc * f
    # Both weight matrices see the same gate gradients; sum over steps and batch with one matmul each.
    flat = d_gates.reshape(seq_len * batch, 4 * H)
    d_bias = flat.sum(axis=0)
    grads = {
        "weight_ih": flat.T @ x.reshape(seq_len * batch, -1),
        "weight_hh": flat.T @ hs[:-1].reshape(seq_len * batch, H),
        "bias_ih": d_bias,
        "bias_hh": d_bias.copy(),
    }
    if input_grad:
        grads["x"] = d_gates @ w_ih  # (seq_len, batch, input)
    return grads


# ---------------------------------------------------------------------------------------------------------
# 3x3 convolution (padding 1, stride 1) and 2x2/stride-2 max-pool, on NHWC activations with OIHW weights (as
# nn.Conv2d keeps them). In NHWC the 3x3 patches of im2col are plain shifted slices, each conv is one
# (N·H·W, C·9) @ (C·9, O) matmul, and its result is already the next layer's NHWC input. Patches are ordered
# (c, ky, kx), the order of an OIHW weight's own memory, so the weight is used as a free (O, C·9) view.
# ---------------------------------------------------------------------------------------------------------


def im2col(x: np.ndarray) -> np.ndarray:
    """x: (N, H, W, C) -> (N·H·W, C·9): row (n, y, x) holds the zero-padded 3x3 patch around that pixel,
    ordered (c, ky, kx)."""
    n, h, w, c = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    cols = np.empty((n, h, w, c, 3, 3), dtype=x.dtype)
    for ky in range(3):
        for kx in range(3):
            cols[..., ky, kx] = padded[:, ky : ky + h, kx : kx + w, :]
    return cols.reshape(n * h * w, c * 9)


def col2im(cols: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The adjoint of im2col: add each patch's gradient back onto the pixels it was copied from."""
    n, h, w, c = shape
    cols = cols.reshape(n, h, w, c, 3, 3)
    padded = np.zeros((n, h + 2, w + 2, c), dtype=cols.dtype)
    for ky in range(3):
        for kx in range(3):
            padded[:, ky : ky + h, kx : kx + w, :] += cols[..., ky, kx]
    return padded[:, 1:-1, 1:-1, :]


def conv3x3_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """x NHWC (N, H, W, C), weight OIHW (O, C, 3, 3), bias (O,) -> NHWC (N, H, W, O), before any activation."""
    n, h, w, _ = x.shape
    out: np.ndarray = im2col(x) @ weight.reshape(weight.shape[0], -1).T + bias
    return out.reshape(n, h, w, -1)


def conv3x3_backward(x: np.ndarray, weight: np.ndarray, d_out: np.ndarray, input_grad: bool = True) -> Arrays:
    """Gradients of conv3x3_forward: {"weight", "bias"} and, with input_grad, "x" (all in the layouts given)."""
    d_flat = d_out.reshape(-1, d_out.shape[-1])  # (N·H·W, O)
    grads = {"weight": (d_flat.T @ im2col(x)).reshape(weight.shape), "bias": d_flat.sum(axis=0)}
    if input_grad:
        grads["x"] = col2im(d_flat @ weight.reshape(weight.shape[0], -1), x.shape)
    return grads


def _pool_windows(x: np.ndarray) -> np.ndarray:
    """(N, H, W, C) -> (N, H/2, W/2, C, 4): the four values of each 2x2 window, in row-major order."""
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 5, 2, 4).reshape(n, h // 2, w // 2, c, 4)


def max_pool_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2x2/stride-2 max-pool of NHWC x; also returns the index (0..3) of the max within each window. On ties
    np.argmax picks the first in row-major order, so the gradient goes to exactly one position (as cuDNN's does)."""
    windows = _pool_windows(x)
    index = windows.argmax(axis=-1)
    return np.take_along_axis(windows, index[..., None], axis=-1)[..., 0], index


def max_pool_backward(d_out: np.ndarray, index: np.ndarray) -> np.ndarray:
    n, h2, w2, c = d_out.shape
    d_windows = np.zeros((n, h2, w2, c, 4), dtype=d_out.dtype)
    np.put_along_axis(d_windows, index[..., None], d_out[..., None], axis=-1)
    # Undo _pool_windows: (n, y2, x2, c, dy, dx) -> (n, y2, dy, x2, dx, c) -> (N, H, W, C).
    return d_windows.reshape(n, h2, w2, c, 2, 2).transpose(0, 1, 4, 2, 5, 3).reshape(n, 2 * h2, 2 * w2, c)


# ---------------------------------------------------------------------------------------------------------
# VGG-16's conv body: 13 × (conv3x3, padding 1, + bias, ReLU), a 2x2/stride-2 max-pool after each block.
# NCHW at its interface (as the workload's input and output), NHWC inside.
# ---------------------------------------------------------------------------------------------------------


def _vgg16_plan() -> list[tuple[str, bool]]:
    """(conv name, whether a max-pool follows it), in the order of vgg16.CONFIG."""
    plan: list[tuple[str, bool]] = []
    convs = iter(vgg16_layers())
    for item in CONFIG:
        if item == "M":
            plan[-1] = (plan[-1][0], True)
        else:
            plan.append((next(convs)[0], False))
    return plan


def vgg16_forward(weights: Arrays, x: np.ndarray) -> tuple[np.ndarray, Cache]:
    """x: (N, 3, H, W) -> the last pool's output (N, 512, H/32, W/32); plus what backward needs."""
    act = x.transpose(0, 2, 3, 1)  # NHWC
    steps: list[dict[str, Any]] = []
    for name, pool_after in _vgg16_plan():
        # Keep the layer's input, not its 9x larger im2col matrix: backward rebuilds that (a copy, no math).
        step: dict[str, Any] = {"name": name, "input": act}
        act = np.maximum(conv3x3_forward(act, weights[f"{name}.weight"], weights[f"{name}.bias"]), 0)
        step["relu_out"] = act
        if pool_after:
            act, step["pool_index"] = max_pool_forward(act)
        steps.append(step)
    return act.transpose(0, 3, 1, 2), {"steps": steps}


def vgg16_backward(weights: Arrays, cache: Cache, d_output: np.ndarray) -> Arrays:
    """d_output: d(loss)/d(output), NCHW like the output. Returns every conv weight's and bias's gradient."""
    grads: Arrays = {}
    d_act = d_output.transpose(0, 2, 3, 1)
    for step in reversed(cache["steps"]):
        name = step["name"]
        if "pool_index" in step:
            d_act = max_pool_backward(d_act, step["pool_index"])
        # ReLU passes the gradient where its output is positive (at exactly 0 the derivative is taken as 0).
        d_pre = d_act * (step["relu_out"] > 0)
        # No one needs the gradient w.r.t. the image.
        layer = conv3x3_backward(step["input"], weights[f"{name}.weight"], d_pre, input_grad=name != "conv1_1")
        grads[f"{name}.weight"], grads[f"{name}.bias"] = layer["weight"], layer["bias"]
        d_act = layer.get("x", d_act)
    return grads


# ---------------------------------------------------------------------------------------------------------
# Dispatch by workload name, and loss = mean(output).
# ---------------------------------------------------------------------------------------------------------

# Workload name -> (forward, backward). The numpy backend supports exactly these workloads.
MODELS = {"lstm": (lstm_forward, lstm_backward), "vgg16": (vgg16_forward, vgg16_backward)}


def _model(workload_name: str) -> tuple[Any, Any]:
    try:
        return MODELS[workload_name]
    except KeyError:
        have = ", ".join(MODELS)
        raise ValueError(f"no NumPy math for workload {workload_name!r} (have: {have})") from None


def forward(workload_name: str, weights: Arrays, inputs: Arrays) -> np.ndarray:
    """The workload's output."""
    output, _ = _model(workload_name)[0](weights, inputs["x"])
    return output  # type: ignore[no-any-return]


def loss_and_grads(workload_name: str, weights: Arrays, inputs: Arrays) -> tuple[np.ndarray, Arrays]:
    """(output, gradient of mean(output) w.r.t. every weight), each in the dtype of the given arrays."""
    forward_fn, backward_fn = _model(workload_name)
    output, cache = forward_fn(weights, inputs["x"])
    d_output = np.full(output.shape, 1.0 / output.size, dtype=output.dtype)  # d mean / d each element
    return output, backward_fn(weights, cache, d_output)


__all__ = [
    "MODELS",
    "col2im",
    "conv3x3_backward",
    "conv3x3_forward",
    "forward",
    "im2col",
    "loss_and_grads",
    "lstm_backward",
    "lstm_forward",
    "max_pool_backward",
    "max_pool_forward",
    "sigmoid",
    "vgg16_backward",
    "vgg16_forward",
]
