from __future__ import annotations

import numpy as np
import pytest

from dlbench.core.errors import UsageError
from dlbench.workloads import WORKLOADS, get_workload
from dlbench.workloads.vgg16 import layers


def test_lstm_shapes_and_flops() -> None:
    w = get_workload("lstm")
    size = w.size({"seq_len": 30, "batch": 32, "hidden": 128})
    assert w.weight_shapes(size) == {"weight_ih": (512, 128), "weight_hh": (512, 128), "bias_ih": (512,),
                                     "bias_hh": (512,)}  # fmt: skip
    assert w.input_shapes(size) == {"x": (30, 32, 128)}
    # two (128 -> 512) matrix products per step, 2 FLOPs per multiply-add, 30 steps
    assert w.flops_per_sample(size, "forward") == 30 * 2 * 2 * 128 * 512
    assert w.flops_per_sample(size, "train") == 3 * w.flops_per_sample(size, "forward")


def test_vgg16_is_thirteen_convs_and_the_known_flop_count() -> None:
    w = get_workload("vgg16")
    size = w.size({"batch": 1})
    assert len(layers()) == 13
    assert size == {"batch": 1, "image": 224}
    assert w.output_shape(size) == (1, 512, 7, 7)
    # VGG-16's conv body is the well-known ~15.35 GMAC (30.7 GFLOP) per 224×224 image.
    assert w.flops_per_sample(size, "forward") == pytest.approx(30.7e9, rel=0.01)
    n_params = sum(int(np.prod(s)) for s in w.weight_shapes(size).values())
    assert n_params == 14_714_688  # torchvision's vgg16().features parameter count


def test_generation_is_deterministic_per_seed_and_float32() -> None:
    w = get_workload("lstm")
    size = w.size({"seq_len": 2, "batch": 2, "hidden": 4})
    a, b = w.make_weights(size, seed=0), w.make_weights(size, seed=0)
    c = w.make_weights(size, seed=1)
    assert all(np.array_equal(a[k], b[k]) and a[k].dtype == np.float32 for k in a)
    assert not np.array_equal(a["weight_ih"], c["weight_ih"])
    x = w.make_inputs(size, seed=0)["x"]
    assert x.shape == (2, 2, 4) and x.dtype == np.float32


@pytest.mark.parametrize(
    ("workload", "given", "message"),
    [
        ("lstm", {"hidden": 0}, "hidden=0"),
        ("lstm", {"depth": 3}, "unknown size parameter 'depth'"),
        ("vgg16", {"image": 100}, "multiple of 32"),
        ("vgg16", {"batch": 2.5}, "must be an integer"),
    ],
)
def test_bad_sizes_name_the_value_and_what_is_allowed(workload: str, given: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        WORKLOADS[workload].size(given)


def test_unknown_workload() -> None:
    allowed = "alexnet, googlenet, lstm, overfeat, resnet50, transformer, vgg16, vgga"
    with pytest.raises(UsageError, match=rf"unknown workload 'resnet' \(allowed: {allowed}\)"):
        get_workload("resnet")


def test_cnn_shapes_flops_and_sizes() -> None:
    """The CNNs' published shapes (convnet-benchmarks' comments: AlexNet's 256×6×6 and OverFeat's 1024×6×6 before
    the classifier, VGG-A's 512×7×7), their forward FLOPs (2 per multiply-add: AlexNet 0.71 G, VGG-A 7.6 G,
    GoogLeNet 1.6 G, ResNet-50 4.1 G multiply-adds per image), and a size too small named with the smallest."""
    from dlbench.workloads import stack

    expected_macs = {"alexnet": 0.714e9, "overfeat": 2.80e9, "vgga": 7.61e9, "googlenet": 1.58e9, "resnet50": 4.09e9}
    classifier_inputs = {"alexnet": 9216, "overfeat": 36864, "vgga": 25088}
    for name, macs in expected_macs.items():
        w = get_workload(name)
        size = w.size({})
        assert w.flops_per_sample(size, "forward") == pytest.approx(2 * macs, rel=0.01), name
        assert w.output_shape(size) == (size["batch"], 1000)
        if name in classifier_inputs:
            width = 4096 if name != "overfeat" else 3072
            assert w.weight_shapes(size)["fc6.weight"] == (width, classifier_inputs[name])
        first = next(layer for layer, _, _ in stack.walk(w.layers, (3, 224, 224)))
        assert w.flops_per_sample(size, "train") < 3 * w.flops_per_sample(size, "forward")  # no image gradient
        assert isinstance(first, stack.Conv)
    with pytest.raises(UsageError, match=r"bad size image=32 for alexnet: too small .*the smallest it takes is 63"):
        get_workload("alexnet").size({"image": 32})


def test_transformer_block_sizes_and_flops() -> None:
    w = get_workload("transformer")
    size = w.size({})
    assert size == {"batch": 8, "seq_len": 1024, "d_model": 768, "heads": 12}  # GPT-2 small's block
    # 12·d² multiply-adds per token in the four projections, 2·seq·d more in attention's two products.
    assert w.flops_per_sample(size, "forward") == 2 * 1024 * (12 * 768**2 + 2 * 1024 * 768)
    assert w.flops_per_sample(size, "train") == 3 * w.flops_per_sample(size, "forward")  # no layer sees the input
    assert w.output_shape(size) == w.input_shapes(size)["x"] == (8, 1024, 768)
    with pytest.raises(UsageError, match=r"bad size d_model=100 for transformer: must be a multiple of heads=12"):
        w.size({"d_model": 100})
