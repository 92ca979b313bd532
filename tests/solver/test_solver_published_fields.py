"""The layer arithmetic reproduces published receptive fields.

Sources:
- docs/theory.md#layer-arithmetic (TF-Slim end points of VGG-16 and AlexNet v2).
- Google's receptive_field library, pre-computed table for TF-Slim models at resolution 224 (and 321):
  https://github.com/google-research/receptive_field/blob/master/receptive_field/RECEPTIVE_FIELD_TABLE.md
  (columns: receptive field, effective stride = our jump, effective padding = our P).

Padding conventions: TF's SAME pads ``max((ceil(s/st) - 1) * st + k - s, 0)`` in total with the smaller
half on the left, so for a stride-2 layer on an even map it pads 0 on the left where our ``"same"``
(left = (ke - 1) // 2) pads 1. The receptive field and the jump do not depend on padding, so they are
compared everywhere; the effective padding is compared only where the conventions agree: networks
whose stride-2 layers are VALID (AlexNet v2, VGG) and MobileNet v1 at 321, where every stride-2 layer
sees an odd map and TF's SAME pads (ke - 1) // 2 on the left exactly like ours.
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest

from cnnplan.solver import Layer, analyse, preset

# (end point, receptive field, effective stride, effective padding) at 224, from the table above.
ALEXNET_V2_224 = [
    ("conv1", 11, 4, 0),
    ("pool1", 19, 8, 0),
    ("conv2", 51, 8, 16),
    ("conv3", 99, 16, 32),
    ("conv4", 131, 16, 48),
    ("conv5", 163, 16, 64),
    ("pool5", 195, 32, 64),
]
VGG_A_224 = [  # TF-Slim vgg_a = VGG configuration A = torchvision vgg11
    ("conv1_1", 3, 1, 1),
    ("pool1", 4, 2, 1),
    ("conv2_1", 8, 2, 3),
    ("pool2", 10, 4, 3),
    ("conv3_1", 18, 4, 7),
    ("conv3_2", 26, 4, 11),
    ("pool3", 30, 8, 11),
    ("conv4_1", 46, 8, 19),
    ("conv4_2", 62, 8, 27),
    ("pool4", 70, 16, 27),
    ("conv5_1", 102, 16, 43),
    ("conv5_2", 134, 16, 59),
    ("pool5", 150, 32, 59),
]
VGG_16_224 = [
    ("conv1_1", 3, 1, 1),
    ("pool1", 6, 2, 2),
    ("conv2_1", 10, 2, 4),
    ("pool2", 16, 4, 6),
    ("conv3_1", 24, 4, 10),
    ("conv3_2", 32, 4, 14),
    ("pool3", 44, 8, 18),
    ("conv4_1", 60, 8, 26),
    ("conv4_2", 76, 8, 34),
    ("pool4", 100, 16, 42),
    ("conv5_1", 132, 16, 58),
    ("conv5_2", 164, 16, 74),
    ("pool5", 212, 32, 90),
]
# MobileNet v1 end points Conv2d_0 and Conv2d_<i>_pointwise: (r, jump) at 224; P at 321.
MOBILENET_V1_R_J = [
    ("Conv2d_0", 3, 2),
    ("Conv2d_1_pointwise", 7, 2),
    ("Conv2d_2_pointwise", 11, 4),
    ("Conv2d_3_pointwise", 19, 4),
    ("Conv2d_4_pointwise", 27, 8),
    ("Conv2d_5_pointwise", 43, 8),
    ("Conv2d_6_pointwise", 59, 16),
    ("Conv2d_7_pointwise", 91, 16),
    ("Conv2d_8_pointwise", 123, 16),
    ("Conv2d_9_pointwise", 155, 16),
    ("Conv2d_10_pointwise", 187, 16),
    ("Conv2d_11_pointwise", 219, 16),
    ("Conv2d_12_pointwise", 251, 32),
    ("Conv2d_13_pointwise", 315, 32),
]
MOBILENET_V1_P_321 = [1, 3, 5, 9, 13, 21, 29, 45, 61, 77, 93, 109, 125, 157]
MOBILENET_V1_P_224_TF = [0, 2, 2, 6, 6, 14, 14, 30, 46, 62, 78, 94, 94, 126]
# resnet_v1_50 block outputs at 224: (r, jump, P).
RESNET_V1_50_224 = {"block1": (35, 8, 15), "block2": (99, 16, 47), "block3": (291, 32, 143), "block4": (483, 32, 239)}


_PER_AXIS = ("kernel_size", "stride", "dilation", "receptive_field", "jump", "jump_in", "effective_padding")


def _square(layer):
    """The layer's statistics with each per-axis pair read as one number, after checking that the square
    network gives the same value on both axes."""
    values = dict(layer.__dict__)
    for field in _PER_AXIS:
        height, width = values[field]
        assert height == width, (layer.name, field, values[field])
        values[field] = height
    return SimpleNamespace(**values)


def _square_layers(architecture, image_size):
    return [_square(layer) for layer in analyse(architecture, image_size).layers]


def _by_name(architecture, image_size):
    return {layer.name: layer for layer in _square_layers(architecture, image_size)}


def test_theory_section_1_facts() -> None:
    """docs/theory.md#layer-arithmetic: VGG-16 pool1 r=6 j=2 P=2, pool5 r=212 j=32 P=90; AlexNet-v2 conv1 r=11 j=4
    P=0, pool5 r=195 j=32 P=64."""
    vgg = _by_name(preset("vgg16"), 224)
    assert (vgg["pool1"].receptive_field, vgg["pool1"].jump, vgg["pool1"].effective_padding) == (6, 2, 2)
    assert (vgg["pool5"].receptive_field, vgg["pool5"].jump, vgg["pool5"].effective_padding) == (212, 32, 90)
    alex = _by_name(preset("alexnet_v2"), 224)
    assert (alex["conv1"].receptive_field, alex["conv1"].jump, alex["conv1"].effective_padding) == (11, 4, 0)
    assert (alex["pool5"].receptive_field, alex["pool5"].jump, alex["pool5"].effective_padding) == (195, 32, 64)


@pytest.mark.parametrize(
    ("name", "table"), [("alexnet_v2", ALEXNET_V2_224), ("vgg11", VGG_A_224), ("vgg16", VGG_16_224)]
)
@pytest.mark.parametrize("image_size", [224, 321])
def test_valid_padded_networks_match_every_end_point(name, table, image_size) -> None:
    """r, jump and P of every tabulated end point (the table gives the same values at 224 and 321)."""
    stats = _by_name(preset(name), image_size)
    for end_point, receptive_field, jump, padding in table:
        layer = stats[end_point]
        assert (layer.receptive_field, layer.jump, layer.effective_padding) == (receptive_field, jump, padding), (
            end_point
        )


def test_mobilenet_v1_receptive_fields_and_jumps_at_224() -> None:
    stats = _by_name(preset("mobilenet_v1"), 224)
    for end_point, receptive_field, jump in MOBILENET_V1_R_J:
        assert (stats[end_point].receptive_field, stats[end_point].jump) == (receptive_field, jump), end_point


def test_mobilenet_v1_padding_where_same_conventions_agree() -> None:
    """At 321 every stride-2 layer sees an odd map: TF's SAME and ours pad alike, so P matches the table."""
    stats = _by_name(preset("mobilenet_v1"), 321)
    assert [stats[name].effective_padding for name, _, _ in MOBILENET_V1_R_J] == MOBILENET_V1_P_321
    for end_point, receptive_field, jump in MOBILENET_V1_R_J:
        assert (stats[end_point].receptive_field, stats[end_point].jump) == (receptive_field, jump), end_point


def test_mobilenet_v1_padding_differs_from_tf_same_only_by_stride_two_left_pads_at_224() -> None:
    """At 224 TF's SAME pads 0 on the left of each stride-2 layer (even maps) where ours pads 1: each of
    the 5 stride-2 layers before an end point adds (1 - 0) * j_in to our P."""
    stats = _square_layers(preset("mobilenet_v1"), 224)
    ours = {layer.name: layer.effective_padding for layer in stats}
    extra = 0
    expected = []
    for layer in stats:
        if layer.kind == "conv" and layer.stride == 2:
            extra += layer.jump_in
        if layer.name == "Conv2d_0" or layer.name.endswith("_pointwise"):
            expected.append(extra)
    got = [ours[name] for name, _, _ in MOBILENET_V1_R_J]
    assert [g - e for g, e in zip(got, expected)] == MOBILENET_V1_P_224_TF


def test_mobilenet_v1_with_tf_same_padding_matches_the_224_table() -> None:
    """TF's SAME ('same_upper': total max((ceil(s/st) - 1) st + k - s, 0), the smaller half first) on every
    3x3 conv reproduces the table's effective padding at 224, where each stride-2 layer on an even map pads
    (0, 1): asymmetric, and different from 'same' (1, 1); r and jump are unchanged."""
    layers = [
        replace(node, padding="same_upper") if node.kind == "conv" and node.kernel_size == 3 else node
        for node in preset("mobilenet_v1")
    ]
    stats = _by_name(layers, 224)
    assert [stats[name].effective_padding for name, _, _ in MOBILENET_V1_R_J] == MOBILENET_V1_P_224_TF
    for end_point, receptive_field, jump in MOBILENET_V1_R_J:
        assert (stats[end_point].receptive_field, stats[end_point].jump) == (receptive_field, jump), end_point
    assert stats["Conv2d_0"].padding == ((0, 1), (0, 1))  # 224 is even: the extra pixel goes last
    assert _by_name(layers, 321)["Conv2d_0"].padding == ((1, 1), (1, 1))  # odd map: symmetric, like 'same'


def _tf_slim_resnet_v1_50() -> list[Layer]:
    """TF-Slim resnet_v1_50 as it computes: conv1 7x7/2 (explicit pad 3), pool1 3x3/2 SAME (left pad 0
    at 224), then blocks of bottleneck units whose *last* unit strides (blocks 1-3) on its 3x3 conv
    (explicit symmetric pad 1), identity shortcuts subsampled by a 1x1 stride-s max pool, projection
    shortcuts (first unit of a block) 1x1 convs. Channel counts are scaled down: they do not matter here."""
    layers = [
        Layer(kind="conv", kernel_size=7, stride=2, padding=3, out_channels=8, name="conv1"),
        Layer(kind="maxpool", kernel_size=3, stride=2, padding=0, name="pool1"),
    ]
    previous = "pool1"
    for block, units in enumerate((3, 4, 6, 3), start=1):
        width = 4 * 2**block
        for unit in range(1, units + 1):
            stride = 2 if unit == units and block < 4 else 1
            name = f"block{block}/unit_{unit}"
            layers += [
                Layer(kind="conv", kernel_size=1, out_channels=width, name=f"{name}/conv1", inputs=(previous,)),
                Layer(kind="conv", kernel_size=3, stride=stride, padding=1, out_channels=width, name=f"{name}/conv2"),
                Layer(kind="conv", kernel_size=1, out_channels=4 * width, name=f"{name}/conv3"),
            ]
            if unit == 1:
                shortcut = Layer(kind="conv", kernel_size=1, stride=stride, out_channels=4 * width, inputs=(previous,))
            else:
                shortcut = Layer(kind="maxpool", kernel_size=1, stride=stride, inputs=(previous,))
            layers.append(Layer(**{**shortcut.__dict__, "name": f"{name}/shortcut"}))
            layers.append(Layer(kind="add", name=f"{name}/add", inputs=(f"{name}/conv3", f"{name}/shortcut")))
            layers.append(Layer(kind="relu", name=f"{name}/relu"))
            previous = f"{name}/relu"
        layers.append(Layer(kind="relu", name=f"block{block}", inputs=(previous,)))
        previous = f"block{block}"
    return layers


def test_resnet_v1_50_block_outputs_through_residual_merges() -> None:
    """The merge rule r = max(r_i - P_i) + max P_i reproduces resnet_v1_50's block end points."""
    stats = _by_name(_tf_slim_resnet_v1_50(), 224)
    for block, expected in RESNET_V1_50_224.items():
        layer = stats[block]
        assert (layer.receptive_field, layer.jump, layer.effective_padding) == expected, block


def test_torchvision_resnet50_differs_from_tf_slim_only_by_where_it_strides() -> None:
    """torchvision (v1.5) strides in the first unit of stages 2-4 instead of the last unit of blocks 1-3:
    the jumps after each stage are 4, 8, 16, 32 (not 8, 16, 32, 32) and the final receptive field is
    427, not 483 (worked by hand below)."""
    stats = _by_name(preset("resnet50"), 224)
    jumps = [stats[f"layer{stage}.0.add"].jump for stage in (1, 2, 3, 4)]
    assert jumps == [4, 8, 16, 32]
    # By hand: conv1 7x7/2 -> r 7, j 2; maxpool 3x3/2 -> r 11, j 4; each 3x3 conv adds 2*j_in:
    # layer1: 3 units at j 4 -> +24 = 35; layer2: first 3x3 at j 4 (+8), then 3 at j 8 (+48) -> 91;
    # layer3: +16 then 5 at j 16 (+160) -> 267; layer4: +32 then 2 at j 32 (+128) -> 427.
    assert stats["layer4.2.add"].receptive_field == 427
