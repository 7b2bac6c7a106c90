"""Output shapes, the ResNet-18 against torchvision's, and freezing."""

from __future__ import annotations

import pytest
import torch
import torchvision

from course_utils.methods.simclr import SimCLR
from course_utils.methods.supervised import ConvBackbone, fashion_classifier
from course_utils.models import ResNet18Backbone


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_conv_backbone_gives_the_sources_2048_features():
    backbone = ConvBackbone()
    assert backbone(torch.zeros(3, 1, 28, 28)).shape == (3, 128 * 4 * 4) == (3, backbone.out_dim)
    model = fashion_classifier()
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert _count(model) == _count(backbone) + (2048 * 32 + 32) + (32 * 10 + 10)  # the head: 2048 -> 32 -> 10


def test_resnet18_at_width_64_is_torchvisions_resnet18():
    ours = ResNet18Backbone(in_channels=3, width=64, small_images=False)
    reference = torchvision.models.resnet18()
    assert _count(ours) == _count(reference) - _count(reference.fc)
    assert [tuple(p.shape) for p in ours.parameters()] == [
        tuple(p.shape) for name, p in reference.named_parameters() if not name.startswith("fc.")
    ]


def test_resnet18_computes_what_torchvisions_computes_with_the_same_weights():
    torch.manual_seed(0)
    reference = torchvision.models.resnet18()
    reference.fc = torch.nn.Identity()
    reference(torch.rand(4, 3, 64, 64))  # training-mode pass: non-trivial BatchNorm running statistics
    ours = ResNet18Backbone(in_channels=3, width=64, small_images=False)
    ours.load_state_dict(dict(zip(ours.state_dict(), reference.state_dict().values())))
    layouts = []
    ours[0].register_forward_hook(lambda module, inputs, output: layouts.append(inputs[0].stride()))
    x = torch.rand(2, 3, 64, 64)
    torch.testing.assert_close(ours.eval()(x), reference.eval()(x), atol=1e-4, rtol=1e-4)
    # it computed channels-last for speed (NHWC strides), which must not change the result above
    assert layouts == [(3 * 64 * 64, 1, 64 * 3, 3)]


@pytest.mark.parametrize("channels, size, width", [(1, 28, 16), (3, 32, 32), (3, 96, 16)])
def test_resnet18_shapes(channels, size, width):
    backbone = ResNet18Backbone(in_channels=channels, width=width)
    assert backbone(torch.zeros(2, channels, size, size)).shape == (2, 8 * width) == (2, backbone.out_dim)


def test_simclr_projects_each_view_with_one_head_on_the_backbone():
    model = SimCLR(ResNet18Backbone(width=8), out_dim=32).eval()  # eval: BatchNorm treats images one by one
    x1, x2 = torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32)
    z1, z2 = model(x1, x2)
    assert z1.shape == z2.shape == (4, 32)
    assert [m.out_features for m in model.projector if isinstance(m, torch.nn.Linear)] == [4 * 32, 32]
    torch.testing.assert_close(z1, model.projector(model.backbone(x1)))
    torch.testing.assert_close(z2, model.projector(model.backbone(x2)))


def test_frozen_backbone_keeps_weights_and_batchnorm_statistics():
    model = fashion_classifier().freeze_backbone()
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(model(torch.rand(8, 1, 28, 28)), torch.randint(0, 10, (8,)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = model.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "weights and running stats must not move"
    assert not model.backbone.training and model.head.training


def test_stride_two_stem_halves_the_feature_map():
    backbone = ResNet18Backbone(width=8, stem_stride=2)
    stem_output = backbone[0](torch.zeros(1, 3, 32, 32))
    assert stem_output.shape == (1, 8, 16, 16)
    assert backbone(torch.zeros(2, 3, 32, 32)).shape == (2, 64)


@pytest.mark.parametrize("backbone", [ConvBackbone(), ResNet18Backbone(width=8)])
def test_slicing_a_backbone_gives_its_first_layers(backbone):
    stem = backbone[:3]
    assert isinstance(stem, torch.nn.Sequential) and len(stem) == 3
    x = torch.rand(2, backbone[0].in_channels, 28, 28)
    assert torch.equal(stem(x), backbone[2](backbone[1](backbone[0](x))))


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: ResNet18Backbone(width=0), "width must be a positive int, got 0"),
        (lambda: ResNet18Backbone(width=16.5), "width must be a positive int, got 16.5"),
        (lambda: ResNet18Backbone(in_channels=0), "in_channels must be a positive int"),
        (lambda: ResNet18Backbone(stem_stride=0), "stem_stride must be a positive int"),
    ],
)
def test_models_reject_non_positive_sizes(build, message):
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize(
    "shape, message",
    [
        ((2, 3, 28, 28), r"ConvBackbone expects \(N, 1, 28, 28\) images, got \(2, 3, 28, 28\)"),
        ((2, 1, 32, 32), r"ConvBackbone expects \(N, 1, 28, 28\) images, got \(2, 1, 32, 32\)"),
        ((1, 28, 28), r"ConvBackbone expects \(N, 1, 28, 28\) images, got \(1, 28, 28\)"),
    ],
)
def test_conv_backbone_says_what_it_expects(shape, message):
    with pytest.raises(ValueError, match=message):
        ConvBackbone()(torch.rand(shape))
    with pytest.raises(ValueError, match=message):  # also from inside the models that hold it
        fashion_classifier()(torch.rand(shape))


@pytest.mark.parametrize(
    "shape, message",
    [
        ((2, 1, 32, 32), r"ResNet18Backbone expects \(N, 3, H, W\) images, got \(2, 1, 32, 32\)"),
        ((2, 32, 32, 3), r"ResNet18Backbone expects \(N, 3, H, W\) images, got \(2, 32, 32, 3\)"),
        ((3, 32, 32), r"ResNet18Backbone expects \(N, 3, H, W\) images, got \(3, 32, 32\)"),
        ((2, 3072), r"ResNet18Backbone expects \(N, 3, H, W\) images, got \(2, 3072\)"),
    ],
)
def test_resnet18_says_what_it_expects(shape, message):
    with pytest.raises(ValueError, match=message):
        ResNet18Backbone(width=8)(torch.rand(shape))


def test_backbones_want_float_images_and_simclr_views_of_one_shape():
    for backbone, shape in [(ConvBackbone(), (2, 1, 28, 28)), (ResNet18Backbone(width=8), (2, 3, 32, 32))]:
        with pytest.raises(TypeError, match="float images.*to_float"):
            backbone(torch.zeros(shape, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"x1 and x2 must have the same shape, got \(2, 3, 32, 32\) and"):
        SimCLR(ResNet18Backbone(width=8), out_dim=16)(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 24, 24))
