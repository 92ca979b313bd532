"""Per-axis geometry (docs/geometry.md): the solver against an independent reference walker on random
per-axis chains and graphs, square networks against their scalar numbers, and hand-checked networks:
Inception-v3's 1x7/7x1 factorisation, GoogLeNet's ceil_mode pools and ResNet-D's average-pool shortcut
(receptive fields measured by gradients through real torch modules)."""

from __future__ import annotations

import functools
from fractions import Fraction

import pytest
from geometry_reference import walk
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from cnnplan.solver import InvalidLayerError, Layer, MisalignedMergeError, VanishingFeatureMapError, analyse, validate
from cnnplan.solver.layers import INPUT

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GRAPH_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

axis_ints = st.integers(min_value=1, max_value=5)


def per_axis(values):
    """An int, or [h, w] (a list, as JSON gives it)."""
    return st.one_of(values, st.lists(values, min_size=2, max_size=2))


paddings = st.one_of(
    st.sampled_from(["same", "valid", "same_upper", "same_lower"]),
    st.integers(0, 2),
    st.lists(st.integers(0, 2), min_size=2, max_size=2),
    st.lists(st.lists(st.integers(0, 2), min_size=2, max_size=2), min_size=2, max_size=2),
)


@st.composite
def windowed(draw, stride_one: bool = False) -> dict:
    """A conv or pool with per-axis kernel, stride (<= kernel on each axis), dilation, padding, ceil_mode."""
    kind = draw(st.sampled_from(["conv", "conv", "maxpool", "avgpool"]))
    kernel = draw(per_axis(axis_ints))
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    dilation = draw(per_axis(st.integers(1, 2))) if kind == "conv" else 1
    if stride_one:
        stride = 1
    else:
        stride = draw(st.one_of(st.integers(1, min(kh, kw)), st.tuples(st.integers(1, kh), st.integers(1, kw))))
        stride = list(stride) if isinstance(stride, tuple) else stride
    layer = {"type": kind, "kernel_size": kernel, "stride": stride, "dilation": dilation, "padding": draw(paddings)}
    if kind != "conv":
        layer["ceil_mode"] = draw(st.booleans())
        if layer["ceil_mode"] and isinstance(layer["padding"], str) and layer["padding"] != "valid":
            layer["padding"] = 0  # PyTorch pads pools only explicitly; keep ceil_mode with explicit pads
    else:
        layer["out_channels"] = 4
    return layer


elementwise = st.sampled_from([{"type": "relu"}, {"type": "bn"}])


@st.composite
def chains(draw) -> list[dict]:
    items = draw(st.lists(st.one_of(windowed(), windowed(), elementwise), min_size=1, max_size=8))
    previous = INPUT
    nodes = []
    for index, item in enumerate(items):
        node = {**item, "name": f"n{index}", "inputs": [previous]}
        nodes.append(node)
        previous = node["name"]
    return nodes


@st.composite
def graphs(draw) -> list[dict]:
    """Blocks of 2-3 stride-1 'same' branches (per-axis kernels) joined by add or concat, between
    per-axis layers of any stride: jumps and sizes align at every merge."""
    nodes: list[dict] = []
    current = INPUT

    def add(layer: dict, inputs: list[str]) -> str:
        name = f"n{len(nodes)}"
        nodes.append({**layer, "name": name, "inputs": inputs})
        return name

    for _ in range(draw(st.integers(1, 3))):
        for layer in draw(st.lists(windowed(), max_size=2)):
            current = add(layer, [current])
        ends = []
        for branch in range(draw(st.integers(2, 3))):
            end = current
            for _ in range(draw(st.integers(0 if branch == 0 else 1, 2))):
                layer = draw(windowed(stride_one=True))
                layer["padding"] = "same"
                layer.pop("ceil_mode", None)
                end = add(layer, [end])
            ends.append(end)
        if len(set(ends)) < len(ends):
            continue
        kind = draw(st.sampled_from(["add", "concat"])) if INPUT not in ends else "concat"
        current = add({"type": kind}, ends)
        current = add({"type": "conv", "kernel_size": 1, "out_channels": 4}, [current])
    return nodes


def _analyse(nodes, image):
    try:
        return analyse(nodes, image, in_channels=4)
    except (VanishingFeatureMapError, MisalignedMergeError):
        reject()


def _compare(nodes, image) -> None:
    analysis = _analyse(nodes, image)
    expected = walk(nodes, image)
    jumps = {INPUT: (1, 1)}
    for stats in analysis.layers:
        want = expected[stats.name]
        got = (stats.receptive_field, stats.jump, stats.effective_padding, stats.output_size)
        assert got == (want["receptive_field"], want["jump"], want["effective_padding"], want["output_size"]), stats
        jumps[stats.name] = want["jump"]
        if stats.kind == "conv":
            node = next(n for n in nodes if n["name"] == stats.name)
            j_in = jumps[node["inputs"][0]]
            k = node["kernel_size"] if isinstance(node["kernel_size"], list) else [node["kernel_size"]] * 2
            d = node.get("dilation", 1)
            d = d if isinstance(d, list) else [d, d]
            real = tuple((d[a] * (k[a] - 1) + 1) * j_in[a] for a in (0, 1))
            assert stats.real_filter_size == real
            assert stats.c_value == tuple(Fraction(real[a], want["receptive_field"][a]) for a in (0, 1))


@SETTINGS
@given(nodes=chains(), height=st.integers(1, 40), width=st.integers(1, 40))
def test_per_axis_chains_equal_the_reference_walker(nodes, height, width) -> None:
    _compare(nodes, (height, width))


@GRAPH_SETTINGS
@given(nodes=graphs(), height=st.integers(8, 32), width=st.integers(8, 32))
def test_per_axis_graphs_equal_the_reference_walker(nodes, height, width) -> None:
    _compare(nodes, (height, width))


def _square_version(nodes: list[dict]) -> list[dict]:
    """Every per-axis field with its height value on both axes."""
    square = []
    for node in nodes:
        node = dict(node)
        for field in ("kernel_size", "stride", "dilation"):
            if isinstance(node.get(field), list):
                node[field] = node[field][0]
        if isinstance(node.get("padding"), list):
            first = node["padding"][0]
            node["padding"] = first if isinstance(first, int) else [first, first]
        square.append(node)
    return square


@SETTINGS
@given(nodes=chains(), side=st.integers(1, 40))
def test_a_square_network_has_the_same_numbers_on_both_axes(nodes, side) -> None:
    """Square kernels, strides, paddings on a square image: every pair is (x, x), and x is the walker's
    scalar answer; on a rectangular image only the output sizes differ."""
    square = _square_version(nodes)
    analysis = _analyse(square, side)
    expected = walk(square, (side, side))
    for stats in analysis.layers:
        for field in ("receptive_field", "jump", "effective_padding", "output_size", "kernel_size", "stride"):
            height, width = getattr(stats, field)
            assert height == width, (stats.name, field)
        assert stats.receptive_field == expected[stats.name]["receptive_field"]
        if stats.c_value is not None:
            assert stats.c_value[0] == stats.c_value[1]
    report = validate(square, side, "1/4", in_channels=4)
    assert report.receptive_field_limit == (side, side)
    assert report.top_receptive_field is None or report.top_receptive_field[0] == report.top_receptive_field[1]


def test_constraint_one_skips_an_axis_with_kernel_one_and_names_the_binding_axis() -> None:
    """A 1x7 conv composes nothing along the height: its height c-value (1 / 1) is not compared. Seven
    1x7 convs give width r = 43 and c_w = 7/43 < 1/6; the violation binds on the width."""
    layers = [Layer(kind="conv", kernel_size=(1, 7), padding=(0, 3)) for _ in range(7)]
    report = validate(layers, 64)
    last = report.analysis.layers[-1]
    assert last.receptive_field == (1, 43) and last.c_value == (Fraction(1), Fraction(7, 43))
    (violation,) = report.violations
    assert (violation.constraint, violation.layer, violation.axis) == ("c_value", "conv6", "width")
    assert violation.value == Fraction(7, 43)
    # transposed, it binds on the height
    transposed = validate([Layer(kind="conv", kernel_size=(7, 1), padding=(3, 0)) for _ in range(7)], 64)
    assert transposed.violations[0].axis == "height"


def test_constraint_two_compares_each_axis_with_its_own_side() -> None:
    """Five 1x9 convs: width r = 41, height r = 1. On a 64x32 image the width limit is 32 (violated); with
    rf_side='max' both axes compare with 64; on a 32x64 image it passes."""
    layers = [Layer(kind="conv", kernel_size=(1, 9), padding=(0, 4)) for _ in range(5)]
    report = validate(layers, (64, 32), "1/8")
    assert report.top_receptive_field == (1, 41) and report.receptive_field_limit == (64, 32)
    (violation,) = report.violations
    assert (violation.constraint, violation.axis, violation.value, violation.limit) == (
        "receptive_field", "width", 41, 32,
    )  # fmt: skip
    assert validate(layers, (64, 32), "1/8", rf_side="max").valid
    assert validate(layers, (32, 64), "1/8").valid
    assert not validate(layers, (64, 32), "1/8", rf_side="min").valid


def test_inception_v3_factorised_7x7_by_hand() -> None:
    """Inception-v3's Mixed_6b branch7x7dbl: 1x1, then 7x1, 1x7, 7x1, 1x7 (padding (3, 0) / (0, 3), stride 1)
    on a 17x17 map at jump 16. A stand-in stem reaches jump 16 and r = 16 + 4 * 2 * 16 = 144 on entry. Each
    1x7 adds 6 * 16 = 96 on the width only, each 7x1 on the height only: after the four r = 144 + 192 on both
    axes. The 7x1's width c-value (16 / 144) is not compared: its kernel is 1 there."""
    stem = [Layer(kind="maxpool", kernel_size=2, stride=2, name=f"p{i}") for i in range(4)]  # r 16, j 16
    stem += [Layer(kind="conv", kernel_size=3, padding=1, name=f"s{i}") for i in range(4)]  # r 144
    entry_r = 16 + 4 * 2 * 16
    branch = [
        Layer(kind="conv", kernel_size=1, name="b1x1"),
        Layer(kind="conv", kernel_size=(7, 1), padding=(3, 0), name="b7x1_1"),
        Layer(kind="conv", kernel_size=(1, 7), padding=(0, 3), name="b1x7_1"),
        Layer(kind="conv", kernel_size=(7, 1), padding=(3, 0), name="b7x1_2"),
        Layer(kind="conv", kernel_size=(1, 7), padding=(0, 3), name="b1x7_2"),
    ]
    analysis = analyse(stem + branch, 17 * 16 + 1)
    by_name = {layer.name: layer for layer in analysis.layers}
    assert by_name["b7x1_1"].receptive_field == (entry_r + 96, entry_r)
    assert by_name["b1x7_1"].receptive_field == (entry_r + 96, entry_r + 96)
    assert by_name["b1x7_2"].receptive_field == (entry_r + 192, entry_r + 192)
    assert by_name["b1x7_2"].output_size == by_name["b1x1"].output_size == (17, 17)
    assert by_name["b1x7_2"].effective_padding[1] - by_name["b1x1"].effective_padding[1] == 2 * 3 * 16
    assert by_name["b7x1_1"].c_value == (Fraction(7 * 16, entry_r + 96), Fraction(16, entry_r))
    report = validate(stem + branch, 17 * 16 + 1, "1/8")
    assert report.top_receptive_field == (entry_r + 192, entry_r + 192)


def test_ceil_mode_follows_pytorchs_output_rule() -> None:
    """3x3/2 on 112: floor 55, ceil 56; on 7 with 2x2/2: floor 3, ceil 4; 3x3/2 pad 1 on 4: ceil gives 3
    but the third window would start at 4 >= 4 + 1? no (4 < 5): 3; 2x2/2 pad 1 on 3: ceil 3, its last window
    starts at 4 >= 3 + 1, so 2 (PyTorch's correction)."""

    def out(size, kernel, stride, padding, ceil):
        layer = Layer(kind="maxpool", kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil)
        return analyse([layer], size).layers[0].output_size[0]

    assert (out(112, 3, 2, 0, False), out(112, 3, 2, 0, True)) == (55, 56)
    assert (out(7, 2, 2, 0, False), out(7, 2, 2, 0, True)) == (3, 4)
    assert out(4, 3, 2, 1, True) == 3
    assert out(3, 2, 2, 1, True) == 2
    with pytest.raises(InvalidLayerError, match="only pools take ceil_mode"):
        analyse([Layer(kind="conv", kernel_size=3, ceil_mode=True)], 8)


def _inception(prefix: str, source: str, width: int = 4) -> list[Layer]:
    """torchvision's Inception block: 1x1 | 1x1, 3x3 | 1x1, 3x3 (its '5x5' branch uses 3x3) | 3x3/1 pad 1
    ceil max pool, 1x1; concatenated."""

    def conv(name, kernel, inputs, padding=0):
        return Layer(kind="conv", kernel_size=kernel, padding=padding, out_channels=width, name=name, inputs=inputs)

    return [
        conv(f"{prefix}.b1", 1, (source,)),
        conv(f"{prefix}.b2a", 1, (source,)), conv(f"{prefix}.b2b", 3, (f"{prefix}.b2a",), 1),
        conv(f"{prefix}.b3a", 1, (source,)), conv(f"{prefix}.b3b", 3, (f"{prefix}.b3a",), 1),
        Layer(kind="maxpool", kernel_size=3, stride=1, padding=1, ceil_mode=True, name=f"{prefix}.b4a", inputs=(source,)),
        conv(f"{prefix}.b4b", 1, (f"{prefix}.b4a",)),
        Layer(kind="concat", name=prefix, inputs=(f"{prefix}.b1", f"{prefix}.b2b", f"{prefix}.b3b", f"{prefix}.b4b")),
    ]  # fmt: skip


def googlenet_features() -> list[Layer]:
    """torchvision's GoogLeNet up to maxpool4 (channel counts scaled down; they do not change geometry)."""
    layers = [
        Layer(kind="conv", kernel_size=7, stride=2, padding=3, out_channels=4, name="conv1"),
        Layer(kind="maxpool", kernel_size=3, stride=2, ceil_mode=True, name="maxpool1"),
        Layer(kind="conv", kernel_size=1, out_channels=4, name="conv2"),
        Layer(kind="conv", kernel_size=3, padding=1, out_channels=4, name="conv3"),
        Layer(kind="maxpool", kernel_size=3, stride=2, ceil_mode=True, name="maxpool2"),
    ]
    previous = "maxpool2"
    for block in ("inception3a", "inception3b"):
        layers += _inception(block, previous)
        previous = block
    layers.append(Layer(kind="maxpool", kernel_size=3, stride=2, ceil_mode=True, name="maxpool3", inputs=(previous,)))
    previous = "maxpool3"
    for block in ("inception4a", "inception4b", "inception4c", "inception4d", "inception4e"):
        layers += _inception(block, previous)
        previous = block
    layers.append(Layer(kind="maxpool", kernel_size=2, stride=2, ceil_mode=True, name="maxpool4", inputs=(previous,)))
    return layers


# By hand: conv1 7x7/2 r 7 j 2; maxpool1 3x3/2 r 11 j 4; conv3 3x3 r 19; maxpool2 3x3/2 r 27 j 8; each
# inception block adds 2 * j through its 3x3 branches (and its 3x3/1 pool): 3a, 3b r 43, 59;
# maxpool3 3x3/2 r 75 j 16; 4a..4e r 107 .. 235; maxpool4 2x2/2 r 251 j 32.
GOOGLENET_POOLS = {"maxpool1": (11, 4), "maxpool2": (27, 8), "maxpool3": (75, 16), "maxpool4": (251, 32)}
GOOGLENET_SIZES_224 = {"maxpool1": 56, "maxpool2": 28, "maxpool3": 14, "maxpool4": 7}


def test_googlenet_ceil_mode_pools_by_hand() -> None:
    """GoogLeNet's pools at 224: with ceil_mode the maps are 56, 28, 14, 7 (floor would give 55, 27, 13, 6)."""
    stats = {layer.name: layer for layer in analyse(googlenet_features(), 224).layers}
    for name, (receptive_field, jump) in GOOGLENET_POOLS.items():
        assert (stats[name].receptive_field, stats[name].jump) == ((receptive_field,) * 2, (jump,) * 2), name
        assert stats[name].output_size == (GOOGLENET_SIZES_224[name],) * 2, name
    floored = [Layer(**{**layer.__dict__, "ceil_mode": False}) for layer in googlenet_features()]
    sizes = {layer.name: layer.output_size[0] for layer in analyse(floored, 224).layers}
    assert [sizes[name] for name in GOOGLENET_POOLS] == [55, 27, 13, 6]


def _gradient_receptive_field(module, image: int, channels: int = 3) -> tuple[tuple[int, int], tuple[int, int]]:
    """((r_h, r_w), (out_h, out_w)) of `module` measured by autograd: the extent of the input pixels with a
    nonzero gradient of the central output unit (all weights positive, so no path cancels)."""
    import torch

    x = torch.ones(1, channels, image, image, requires_grad=True)
    y = module(x)
    h, w = y.shape[-2] // 2, y.shape[-1] // 2
    (grad,) = torch.autograd.grad(y[0, :, h, w].sum(), x)
    rows = torch.nonzero(grad[0].abs().sum(0).sum(1)).flatten()
    cols = torch.nonzero(grad[0].abs().sum(0).sum(0)).flatten()
    return (int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)), (y.shape[-2], y.shape[-1])


@functools.cache
def _positive_torchvision_googlenet():
    """torchvision's GoogLeNet (random weights) with positive weights, identity batch norm and each max pool
    replaced by an average pool of the same geometry (a max routes the gradient to one tap only)."""
    torch = pytest.importorskip("torch")
    from cnnplan.service.interop.torch_compat import import_torchvision

    torchvision = import_torchvision()
    model = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False).eval()
    model.requires_grad_(False)  # only the input's gradient is measured
    for child in list(model.modules()):
        for attribute, sub in list(child.named_children()):
            if isinstance(sub, torch.nn.MaxPool2d):
                pool = torch.nn.AvgPool2d(sub.kernel_size, sub.stride, sub.padding, ceil_mode=sub.ceil_mode)
                setattr(child, attribute, pool)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(parameter.abs() + 0.01)
    return model


@pytest.mark.parametrize("end", list(GOOGLENET_POOLS))
def test_googlenet_pools_against_gradient_measured_fields_of_torchvision(end) -> None:
    """The receptive field and map size of torchvision's own GoogLeNet modules, measured with autograd at
    an image large enough that the central unit's field lies inside it, equal the solver's."""
    torch = pytest.importorskip("torch")
    model = _positive_torchvision_googlenet()
    order = ["conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3",
             "inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4"]  # fmt: skip
    trunk = torch.nn.Sequential(*[getattr(model, name) for name in order[: order.index(end) + 1]])
    receptive_field, jump = GOOGLENET_POOLS[end]
    image = receptive_field + 4 * jump + 1  # the central unit's field lies inside (else the span is cut short)
    measured, size = _gradient_receptive_field(trunk, image)
    stats = analyse(googlenet_features(), image).by_name(end)
    assert measured == stats.receptive_field
    assert size == stats.output_size


def _resnet_d_block(ceil_mode: bool) -> list[Layer]:
    """ResNet-D's downsampling block (Bag of Tricks, timm's avg_down): main path 1x1, 3x3/2 pad 1, 1x1;
    shortcut a 2x2/2 average pool (ceil_mode, as timm) then a 1x1 conv; added."""
    return [
        Layer(kind="conv", kernel_size=1, out_channels=4, name="conv1"),
        Layer(kind="conv", kernel_size=3, stride=2, padding=1, out_channels=4, name="conv2"),
        Layer(kind="conv", kernel_size=1, out_channels=8, name="conv3"),
        Layer(kind="avgpool", kernel_size=2, stride=2, ceil_mode=ceil_mode, name="down.pool", inputs=("input",)),
        Layer(kind="conv", kernel_size=1, out_channels=8, name="down.conv", inputs=("down.pool",)),
        Layer(kind="add", name="add", inputs=("conv3", "down.conv")),
    ]


def test_resnet_d_average_pool_shortcut_by_hand_and_by_gradient() -> None:
    """On an odd 7x7 map the main path gives (7 + 2 - 3) // 2 + 1 = 4; the 2x2/2 pool needs ceil_mode for 4
    (floor: 3, a misaligned merge). The main path covers pixels [-1, 1] of unit 0 (r 3, P 1), the shortcut
    [0, 1] (r 2, P 0): the union is r = max(3 - 1, 2 - 0) + max(1, 0) = 3, P = 1, jump 2."""
    stats = analyse(_resnet_d_block(True), 7, in_channels=4).by_name("add")
    assert (stats.receptive_field, stats.jump, stats.effective_padding, stats.output_size) == (
        (3, 3), (2, 2), (1, 1), (4, 4),
    )  # fmt: skip
    with pytest.raises(MisalignedMergeError, match="different sizes"):
        analyse(_resnet_d_block(False), 7, in_channels=4)
    torch = pytest.importorskip("torch")
    from cnnplan.service.interop.torch_compat import import_timm

    timm = import_timm()
    model = timm.create_model("resnet50d", pretrained=False).eval()
    block = model.layer2[0]  # the first downsampling block: 3x3/2 main path, avg-pool shortcut
    assert isinstance(block.downsample[0], torch.nn.AvgPool2d) and block.downsample[0].ceil_mode
    with torch.no_grad():
        for parameter in block.parameters():
            parameter.copy_(parameter.abs() + 0.01)
    measured, size = _gradient_receptive_field(block, 7, channels=256)
    assert measured == stats.receptive_field and size == stats.output_size


def test_inception_v3_mixed_6b_branch_against_gradients_through_torchvision() -> None:
    """torchvision's Inception-v3 Mixed_6b, branch7x7dbl: 1x1, 7x1 (pad (3, 0)), 1x7 (pad (0, 3)), 7x1, 1x7 on
    a 17x17 map. Measured by autograd after each conv, the field grows on one axis at a time: (7, 1),
    (7, 7), (13, 7), (13, 13); the solver answers the same, and the map stays 17x17."""
    torch = pytest.importorskip("torch")
    from cnnplan.service.interop.torch_compat import import_torchvision

    torchvision = import_torchvision()
    model = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False).eval()
    model.requires_grad_(False)
    block = model.Mixed_6b
    with torch.no_grad():
        for parameter in block.parameters():
            parameter.copy_(parameter.abs() + 0.01)
    names = ["branch7x7dbl_1", "branch7x7dbl_2", "branch7x7dbl_3", "branch7x7dbl_4", "branch7x7dbl_5"]
    layers = []
    for name in names:
        conv = getattr(block, name).conv
        layers.append(Layer(kind="conv", kernel_size=tuple(conv.kernel_size), padding=tuple(conv.padding),
                            out_channels=conv.out_channels, bias=False, name=name))  # fmt: skip
    stats = analyse(layers, 25, in_channels=768)
    expected = [(1, 1), (7, 1), (7, 7), (13, 7), (13, 13)]
    assert [layer.receptive_field for layer in stats.layers] == expected
    for count in range(2, len(names) + 1):
        trunk = torch.nn.Sequential(*[getattr(block, name) for name in names[:count]])
        measured, size = _gradient_receptive_field(trunk, 25, channels=768)
        assert measured == stats.layers[count - 1].receptive_field and size == (25, 25)
    first_7x1 = stats.layers[1]  # its width c-value (1 / 1) is exempt: kernel 1 on that axis
    report = validate(layers, 25, in_channels=768)
    assert first_7x1.c_value == (Fraction(7, 7), Fraction(1, 1)) and report.valid


@SETTINGS
@given(nodes=chains(), height=st.integers(1, 40), width=st.integers(1, 40))
def test_the_planners_chain_walk_equals_analyse_on_per_axis_chains(nodes, height, width) -> None:
    from cnnplan.solver.analysis import analyse_chain
    from cnnplan.solver.layers import as_graph

    analysis = _analyse(nodes, (height, width))
    assert analyse_chain(as_graph(nodes), (height, width), in_channels=4).layers == analysis.layers
