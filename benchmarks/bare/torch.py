"""The simplest timed loop a PyTorch user writes for one LSTM layer's forward pass, outside dlbench.

On a GPU (`median_forward_cuda_s`): what a careful user writes there, CUDA events around blocks of steps (a step
of tens of microseconds is shorter than a host clock read plus a synchronisation), fp32 without TF32."""

from __future__ import annotations

import statistics
import time

import torch


def median_forward_s(seq_len: int = 30, batch: int = 32, hidden: int = 128, iters: int = 200) -> float:
    lstm = torch.nn.LSTM(hidden, hidden)
    x = torch.randn(seq_len, batch, hidden)
    times = []
    with torch.no_grad():
        for _ in range(10):
            lstm(x)
        for _ in range(iters):
            start = time.perf_counter()
            lstm(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def median_forward_cuda_s(seq_len: int = 30, batch: int = 32, hidden: int = 128, blocks: int = 30,
                          steps: int = 100) -> float:  # fmt: skip
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):  # fp32 means fp32, as in dlbench (torch >= 2.9)
        torch.backends.cuda.matmul.fp32_precision = "ieee"
        torch.backends.cudnn.conv.fp32_precision = "ieee"
        torch.backends.cudnn.rnn.fp32_precision = "ieee"
    else:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    lstm = torch.nn.LSTM(hidden, hidden).cuda()
    x = torch.randn(seq_len, batch, hidden, device="cuda")
    times = []
    with torch.no_grad():
        for _ in range(20):
            lstm(x)
        torch.cuda.synchronize()
        for _ in range(blocks):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(steps):
                lstm(x)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3 / steps)
    return statistics.median(times)


if __name__ == "__main__":
    print(median_forward_s())
