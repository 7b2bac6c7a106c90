"""The training-speed benchmark (benchmarks/ssl_step.py) builds what it says and runs end to end."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from benchmarks.ssl_step import benchmark_images, main, resnet18


def _input_size_of(module: nn.Module, network: nn.Module, x: torch.Tensor) -> int:
    seen = []
    handle = module.register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[0].shape[-1]))
    network(x)
    handle.remove()
    return seen[0]


@pytest.mark.parametrize(("model", "stem_kernel", "layer1_size"), [("imagenet", 7, 8), ("cifar", 3, 32)])
def test_resnet18_stems(model, stem_kernel, layer1_size):
    network = resnet18(model).eval()
    x = torch.zeros(2, 3, 32, 32)
    assert network.conv1.kernel_size == (stem_kernel, stem_kernel)
    # ImageNet stem: stride-2 conv then stride-2 max-pool, 32 -> 8; CIFAR stem keeps 32 x 32
    assert _input_size_of(network.layer1, network, x) == layer1_size
    assert network(x).shape == (2, 512) and network.out_dim == 512


def test_images_without_cifar10_are_random_pixels_of_the_asked_size():
    images, source = benchmark_images(size=16, count=8)
    assert source == "random pixels"
    assert images.shape == (8, 3, 16, 16) and images.dtype == torch.uint8


def test_a_tiny_run_prints_both_rates_and_their_ratio(capsys):
    main(["--model", "cifar", "--size", "16", "--batch", "8", "--rounds", "1", "--steps", "1"])
    out = capsys.readouterr().out
    assert "round 1: source" in out and "course / source =" in out


def test_bad_settings_are_refused(capsys):
    with pytest.raises(SystemExit):
        main(["--batch", "0"])
    assert "--batch must be at least 1, got 0" in capsys.readouterr().err
