"""One LSTM layer as a `scan` graph, written once for Theano's API and its forks (Theano 1.0.5, Aesara, PyTensor):
the deeplearning.net LSTM tutorial's shape of it. The input projection of every step is one `dot` outside the
recurrence; `scan` steps over it with the previous (h, c), adds `dot(h, W_hh.T)`, applies the gates in the
workload's order (i, f, g, o) and returns (h, c). The gradient is the framework's own (scan's backward scan).

The framework's names come in as arguments (its tensor module, its scan, its sigmoid), so that no framework is
imported here. Worker-side module: Python >= 3.9, the standard library only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def scan_lstm(tensor: Any, scan: Callable[..., Any], sigmoid: Callable[[Any], Any], x: Any, w: dict[str, Any],
              hidden: Any) -> Any:  # fmt: skip
    """x: (seq_len, batch, hidden) -> h at every step, (seq_len, batch, hidden); zero initial state.
    `scan(step, sequences=..., outputs_info=..., non_sequences=...)` returns the step's outputs (h, c) over
    time; `hidden` is the hidden size (a number, or the framework's symbolic one)."""
    x_gates = tensor.dot(x, w["weight_ih"].T) + w["bias_ih"] + w["bias_hh"]  # (seq_len, batch, 4H), all steps at once
    h0 = tensor.zeros((x.shape[1], hidden), dtype=x.dtype)

    def step(xg_t: Any, h: Any, c: Any, w_hh: Any) -> tuple[Any, Any]:
        gates = xg_t + tensor.dot(h, w_hh.T)
        i = sigmoid(gates[:, :hidden])
        f = sigmoid(gates[:, hidden : 2 * hidden])
        g = tensor.tanh(gates[:, 2 * hidden : 3 * hidden])
        o = sigmoid(gates[:, 3 * hidden :])
        c = f * c + i * g
        return o * tensor.tanh(c), c

    hs, _ = scan(step, sequences=x_gates, outputs_info=[h0, h0], non_sequences=[w["weight_hh"]])
    return hs
