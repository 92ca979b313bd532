"""Presets: published parameter and multiply-add counts, graph structure, API and errors.

Sources of the numbers:
- torchvision's weight metadata (``meta["num_params"]`` and ``meta["_ops"]`` of each ``*_Weights.IMAGENET1K_V1``
  in https://github.com/pytorch/vision/tree/main/torchvision/models, shown as "Params" and "GFLOPS" in
  https://pytorch.org/vision/stable/models.html); torchvision's GFLOPS count multiply-adds of
  convolutions and linear layers, i.e. half of our FLOPs, which count 2 per multiply-add.
- Keras Applications table, https://keras.io/api/applications/ (MobileNet: 4,253,864 parameters,
  which include BatchNormalization's non-trainable moving mean and variance, 2 per channel).
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from cnnplan.solver import UnknownPresetError, analyse, preset, preset_info, preset_names, validate
from cnnplan.solver.layers import CLASSIFIER, FEATURE

TORCHVISION_PARAMS = {
    "alexnet": 61_100_840,
    "vgg11": 132_863_336,
    "vgg13": 133_047_848,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
}
TORCHVISION_GMACS = {  # meta["_ops"] of each IMAGENET1K_V1 weight (torchvision/models/<family>.py)
    "alexnet": 0.714,
    "vgg11": 7.609,
    "vgg13": 11.308,
    "vgg16": 15.47,
    "vgg19": 19.632,
    "resnet18": 1.814,
    "resnet34": 3.664,
    "resnet50": 4.089,
}
KERAS_MOBILENET_PARAMS_WITH_BN_STATISTICS = 4_253_864


def test_names() -> None:
    names = preset_names()
    assert names == sorted(names)
    assert {"alexnet", "alexnet_v2", "vgg11", "vgg13", "vgg16", "vgg19", "resnet18", "resnet34", "resnet50",
            "mobilenet_v1"} <= set(names)  # fmt: skip


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_parameter_counts_match_torchvision(name: str) -> None:
    assert analyse(preset(name), 224).params == TORCHVISION_PARAMS[name]


@pytest.mark.parametrize("name", sorted(TORCHVISION_GMACS))
def test_multiply_adds_match_torchvision_gflops(name: str) -> None:
    assert round(analyse(preset(name), 224).flops / 2 / 1e9, 3) == TORCHVISION_GMACS[name]


def test_mobilenet_v1_parameters_match_keras() -> None:
    analysis = analyse(preset("mobilenet_v1"), 224)
    bn_channels = sum(layer.out_channels for layer in analysis.layers if layer.kind == "bn")
    assert analysis.params + 2 * bn_channels == KERAS_MOBILENET_PARAMS_WITH_BN_STATISTICS


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50"])
def test_resnets_have_real_merges_and_projection_shortcuts(name: str) -> None:
    layers = preset(name)
    blocks = {"resnet18": 8, "resnet34": 16, "resnet50": 16}[name]
    adds = [layer for layer in layers if layer.kind == "add"]
    assert len(adds) == blocks and all(len(layer.inputs) == 2 for layer in adds)
    projections = [layer for layer in layers if layer.name.endswith("downsample.0")]
    assert all(layer.kind == "conv" and layer.kernel_size == 1 and not layer.bias for layer in projections)
    assert [layer.stride for layer in projections if layer.stride == 2] == [2, 2, 2]
    assert all(not layer.bias for layer in layers if layer.kind == "conv")
    assert any(layer.kind == "bn" for layer in layers)
    stats = {s.name: s for s in analyse(layers, 224).layers}
    for add in adds:  # both inputs of every merge are aligned (same jump, size, channels)
        first, second = (stats[source] for source in add.inputs)
        assert (first.jump, first.output_size, first.out_channels) == (
            second.jump,
            second.output_size,
            second.out_channels,
        )


def test_mobilenet_v1_depthwise_convolutions_use_groups() -> None:
    stats = analyse(preset("mobilenet_v1"), 224).layers
    depthwise = [layer for layer in stats if layer.name.endswith("_depthwise")]
    assert len(depthwise) == 13
    assert all(layer.groups == layer.in_channels == layer.out_channels for layer in depthwise)
    assert [layer.stride for layer in depthwise].count((2, 2)) == 4
    assert stats[-1].out_channels == 1000


@pytest.mark.parametrize("name", ["alexnet", "alexnet_v2", "vgg11", "vgg13", "vgg16", "vgg19", "resnet18", "resnet34",
                                  "resnet50", "mobilenet_v1"])  # fmt: skip
def test_every_preset_is_a_checked_graph_with_a_classifier_level(name: str) -> None:
    layers = preset(name)
    assert layers == preset(name)  # deterministic
    assert len({layer.name for layer in layers}) == len(layers)
    levels = [layer.level for layer in layers]
    assert levels[0] == FEATURE and levels[-1] == CLASSIFIER
    assert levels == sorted(levels, key=lambda level: level == CLASSIFIER)  # feature level first
    info = preset_info(name)
    assert set(info) == {"name", "title", "default_image_size", "description", "source"}
    assert info["name"] == name and info["default_image_size"] == 224
    report = validate(layers, info["default_image_size"])
    assert report.depth == sum(1 for layer in layers if layer.kind == "conv" and layer.level == FEATURE)
    assert analyse(layers, 224).layers[-1].output_size == (1, 1)


def test_vgg16_against_the_theory_at_224() -> None:
    """VGG-16 passes both constraints at 224 with t = 1/6. One more 3x3 conv after conv5_3 (jump 16)
    would keep c = 48/228 >= 1/6 but reach r = 196 + 32 = 228 > 224: no headroom."""
    report = validate(preset("vgg16"), 224)
    assert report.valid
    assert report.top_layer == "conv5_3" and report.top_receptive_field == (196, 196)
    assert report.analysis.by_name("conv5_3").c_value == (Fraction(48, 196), Fraction(48, 196))
    assert report.depth == 13 and report.depth_headroom == 0
    assert validate(preset("vgg16"), 228).depth_headroom == 1


@pytest.mark.parametrize("bad", ["vgg17", "", "VGG16", None, 3, ["vgg16"]])
def test_unknown_preset(bad) -> None:
    with pytest.raises(UnknownPresetError) as caught:
        preset(bad)
    assert caught.value.field == "preset" and caught.value.code == "unknown_preset"
    with pytest.raises(UnknownPresetError):
        preset_info(bad)
