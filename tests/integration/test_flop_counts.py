"""Each CNN's FLOP count (workloads/stack.py: 2 per multiply-add of every convolution and linear layer; train adds
each layer's weight and input gradients, none for the image) equals what torch.utils.flop_counter counts while
PyTorch runs the same network, forward and train, at two sizes: the FLOP/s and % of peak dlbench shows rest on it."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from dlbench.backends.torch import stack as torch_stack  # noqa: E402
from dlbench.workloads.convnets import CONVNETS  # noqa: E402

# Two sizes each: a small one and a larger, non-square-friendly one (odd image sides exercise the floor in every
# strided window).
SIZES = {"alexnet": [(1, 63), (2, 131)], "overfeat": [(1, 71), (2, 103)], "vgga": [(1, 32), (2, 80)],
         "googlenet": [(1, 32), (2, 96)], "resnet50": [(2, 32), (1, 97)]}  # fmt: skip


@pytest.mark.parametrize("workload", CONVNETS, ids=lambda w: w.name)
def test_flops_equal_torch_flop_counter(workload) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    for batch, image in SIZES[workload.name]:
        size = workload.size({"batch": batch, "image": image})
        shape = workload.input_shapes(size)["x"]
        model, _ = torch_stack.build(workload.layers, shape)
        model.train()
        x = torch.randn(shape)
        with FlopCounterMode(display=False) as forward, torch.no_grad():
            model(x)
        with FlopCounterMode(display=False) as train:
            torch.autograd.grad(model(x).mean(), list(model.parameters()))
        assert workload.flops_per_sample(size, "forward") * batch == forward.get_total_flops(), (batch, image)
        assert workload.flops_per_sample(size, "train") * batch == train.get_total_flops(), (batch, image)
