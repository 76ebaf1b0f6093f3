"""Each layer stack's FLOP count (workloads/stack.py: 2 per multiply-add of every convolution and linear layer and of
attention's two products; train adds each layer's weight and input gradients, none for the image) equals what
torch.utils.flop_counter counts while PyTorch runs the same network, forward and train, at two sizes: the FLOP/s and
% of peak dlbench shows rest on it."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from dlbench.backends.torch import stack as torch_stack  # noqa: E402
from dlbench.workloads.convnets import STACKS  # noqa: E402

# Two sizes each: a small one and a larger, non-square-friendly one (odd image sides exercise the floor in every
# strided window).
SIZES = {"alexnet": [(1, 63), (2, 131)], "overfeat": [(1, 71), (2, 103)], "vgga": [(1, 32), (2, 80)],
         "googlenet": [(1, 32), (2, 96)], "resnet50": [(2, 32), (1, 97)]}  # fmt: skip
TRANSFORMER = [{"batch": 2, "seq_len": 16, "d_model": 32, "heads": 4},
               {"batch": 1, "seq_len": 40, "d_model": 48, "heads": 6}]  # fmt: skip


@pytest.mark.parametrize("workload", STACKS, ids=lambda w: w.name)
def test_flops_equal_torch_flop_counter(workload) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    images = [{"batch": b, "image": i} for b, i in SIZES.get(workload.name, [])]
    sizes = TRANSFORMER if workload.name == "transformer" else images
    for given in sizes:
        size = workload.size(given)
        batch = size["batch"]
        shape = workload.input_shapes(size)["x"]
        model, _ = torch_stack.build(workload.layers_for(size), shape)
        model.train()
        x = torch.randn(shape)
        # The math kernel of attention: flop_counter does not know the CPU's fused attention op and would count
        # nothing for it (it counts the CUDA ones), while the math kernel's two products are what is counted.
        with sdpa_kernel(SDPBackend.MATH):
            with FlopCounterMode(display=False) as forward, torch.no_grad():
                model(x)
            with FlopCounterMode(display=False) as train:
                torch.autograd.grad(model(x).mean(), list(model.parameters()))
        assert workload.flops_per_sample(size, "forward") * batch == forward.get_total_flops(), size
        assert workload.flops_per_sample(size, "train") * batch == train.get_total_flops(), size
