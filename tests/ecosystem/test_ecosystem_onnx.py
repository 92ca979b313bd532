"""ONNX import: hand-built graphs, models exported from the worker's builder, uploads and the CLI."""

from __future__ import annotations

import io
import warnings
from fractions import Fraction

import httpx
import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from cnnplan.service.cli.main import main
from cnnplan.service.interop.onnx_import import OnnxImportError, validate_onnx, validate_onnx_file
from cnnplan.service.worker.builder import build_model
from cnnplan.solver import PlanRequest, SolverError, WidthRule, analyse, make_plan


def weight(name: str, *shape: int) -> TensorProto:
    return numpy_helper.from_array(np.zeros(shape, dtype=np.float32), name)


def hand_built(extra_nodes=()) -> bytes:
    """conv-bn-relu, maxpool, a residual add, a concat of a 1x1 and a 3x3 conv, an average pool, a conv
    padded by a separate Pad node, global average pool, flatten, gemm."""
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "s8", "z8", "z8", "s8"], ["n1"], name="bn1"),
        helper.make_node("Relu", ["n1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], name="conv2", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Add", ["p1", "r2"], ["a1"], name="add1"),
        helper.make_node("Conv", ["a1", "w3"], ["c3"], name="conv3", kernel_shape=[1, 1]),
        helper.make_node("Conv", ["a1", "w4"], ["c4"], name="conv4", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["c3", "c4"], ["cat"], name="cat", axis=1),
        helper.make_node("AveragePool", ["cat"], ["p2"], name="pool2", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Pad", ["p2", "pads"], ["padded"], name="pad5"),
        helper.make_node("Conv", ["padded", "w5"], ["c5"], name="conv5", kernel_shape=[3, 3]),
        helper.make_node("GlobalAveragePool", ["c5"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "w6", "b6"], ["logits"], name="fc", transB=1),
        *extra_nodes,
    ]
    initializers = [
        weight("w1", 8, 3, 3, 3),
        weight("b1", 8),
        weight("s8", 8),
        weight("z8", 8),
        weight("w2", 8, 8, 3, 3),
        weight("w3", 4, 8, 1, 1),
        weight("w4", 4, 8, 3, 3),
        weight("w5", 16, 8, 3, 3),
        weight("w6", 10, 16),
        weight("b6", 10),
        numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=np.int64), "pads"),
    ]
    output = extra_nodes[-1].output[0] if extra_nodes else "logits"
    graph = helper.make_graph(
        nodes, "hand_built", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, [1, 10])], initializers,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


EQUIVALENT = [
    {"type": "conv", "kernel_size": 3, "padding": 1, "out_channels": 8, "name": "conv1"},
    {"type": "bn", "name": "bn1"},
    {"type": "relu", "name": "relu1"},
    {"type": "maxpool", "kernel_size": 2, "stride": 2, "name": "pool1"},
    {"type": "conv", "kernel_size": 3, "padding": 1, "out_channels": 8, "bias": False, "name": "conv2"},
    {"type": "relu", "name": "relu2"},
    {"type": "add", "name": "add1", "inputs": ["pool1", "relu2"]},
    {"type": "conv", "kernel_size": 1, "out_channels": 4, "bias": False, "name": "conv3", "inputs": ["add1"]},
    {
        "type": "conv",
        "kernel_size": 3,
        "padding": 1,
        "out_channels": 4,
        "bias": False,
        "name": "conv4",
        "inputs": ["add1"],
    },
    {"type": "concat", "name": "cat", "inputs": ["conv3", "conv4"]},
    {"type": "avgpool", "kernel_size": 2, "stride": 2, "name": "pool2"},
    {"type": "conv", "kernel_size": 3, "padding": 1, "out_channels": 16, "bias": False, "name": "conv5"},
    {"type": "global_avgpool", "name": "gap", "level": "classifier"},
    {"type": "linear", "out_channels": 10, "name": "fc", "level": "classifier"},
]


def test_hand_built_graph_matches_the_solver_and_known_answers():
    report, imported = validate_onnx(hand_built())
    assert imported.image_size == (32, 32) and imported.passed_through == ("Flatten",)
    expected = analyse(EQUIVALENT, 32)
    got = {layer.name: layer for layer in report.analysis.layers}
    for layer in expected.layers:
        mine = got[layer.name]
        assert (mine.receptive_field, mine.jump, mine.output_size, mine.c_value, mine.out_channels, mine.level) == (
            layer.receptive_field,
            layer.jump,
            layer.output_size,
            layer.c_value,
            layer.out_channels,
            layer.level,
        ), layer.name
    # by hand (docs/theory.md#layer-arithmetic): merge r = max(r_i - P_i) + max P_i
    assert (got["add1"].receptive_field, got["add1"].effective_padding) == ((8, 8), (3, 3))
    assert (got["cat"].receptive_field, got["conv5"].receptive_field) == ((12, 12), (22, 22))
    assert got["conv5"].c_value == (Fraction(6, 11),) * 2
    assert got["conv5"].padding == ((1, 1), (1, 1))  # the Pad node, folded
    assert report.valid and report.depth == 5 and report.top_receptive_field == (22, 22)


def test_upsampling_is_refused_by_name():
    resize = helper.make_node("Resize", ["logits", "", "scales"], ["up"], name="upsample9")
    scales = helper.make_node("Constant", [], ["scales"], name="k",
                              value=numpy_helper.from_array(np.ones(2, dtype=np.float32)))  # fmt: skip
    with pytest.raises(OnnxImportError) as caught:
        validate_onnx(hand_built([scales, resize]))
    assert caught.value.field == "model.graph.node[17]"
    assert "node 'upsample9' is a Resize" in caught.value.reason
    assert "downsampling CNNs only" in caught.value.reason


def test_builder_export_reproduces_the_plan(tmp_path):
    plan = make_plan(PlanRequest(32, num_classes=10, widths=WidthRule(base=8)))
    data = export(plan, export_params=True)
    model = onnx.load_from_string(data)
    windowed = [node.name for node in model.graph.node if node.op_type in ("Conv", "MaxPool", "AveragePool")]
    first_classifier = next(i for i, layer in enumerate(plan.layers) if layer.level == "classifier")
    classifier_from = windowed[sum(1 for layer in plan.layers[:first_classifier] if layer.kind in ("conv", "maxpool"))]
    report, _ = validate_onnx(data, classifier_from=classifier_from)
    planned = [
        (s.receptive_field, s.jump, s.c_value, s.output_size, s.level) for s in plan.layer_stats if s.kind == "conv"
    ]
    imported = [
        (s.receptive_field, s.jump, s.c_value, s.output_size, s.level)
        for s in report.analysis.layers
        if s.kind == "conv"
    ]
    assert imported == planned
    assert report.valid and report.depth == plan.depth and report.top_receptive_field == plan.report.top_receptive_field
    default_report, _ = validate_onnx(data)  # default: the classifier starts at the global pool
    assert not default_report.valid and default_report.depth == plan.depth + 2


def export(plan, export_params: bool) -> bytes:
    module, _ = build_model(plan.layers, plan.image_size)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (torch.zeros(1, 3, *plan.image_size),), buffer, dynamo=False,
                          export_params=export_params)  # fmt: skip
    return buffer.getvalue()


@pytest.mark.anyio
async def test_multipart_upload(app):
    plan = make_plan(PlanRequest(32, num_classes=10, widths=WidthRule(base=8)))
    data = export(plan, export_params=False)  # weights as inputs: small enough for the 1 MiB body limit
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        answer = await http.post("/validate", files={"model": ("net.onnx", data)}, data={"image_size": "64"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["image_size"] == [64, 64] and body["depth"] == plan.depth + 2
        assert body["onnx"]["passed_through"] == ["Flatten", "Unsqueeze"]
        svg = await http.post("/validate", params={"format": "svg"}, files={"model": ("net.onnx", data)})
        assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
        for files, form, field in (
            ({"model": ("net.onnx", b"\x08\x07garbage")}, {}, "model"),
            ({"model": ("net.onnx", b"")}, {}, "model"),
            ({"other": ("net.onnx", data)}, {}, "model"),
            ({"model": ("net.onnx", data)}, {"image_size": "big"}, "image_size"),
            ({"model": ("net.onnx", data)}, {"classifier_from": "nope"}, "classifier_from"),
            ({"model": ("net.onnx", hand_built([helper.make_node("LSTM", ["logits", "w6", "w6"], ["h"], name="rnn")]))}, {},
             "model.graph.node[16]"),
        ):  # fmt: skip
            bad = await http.post("/validate", files=files, data=form)
            assert bad.status_code == 422, bad.text
            assert bad.headers["content-type"] == "application/problem+json"
            assert bad.json()["field"] == field
        json_body = await http.post("/validate", json={"preset": "vgg16"})  # the JSON route still answers
        assert json_body.status_code == 200 and json_body.json()["depth"] == 13


def test_cli_validates_an_onnx_file(tmp_path):
    path = tmp_path / "hand.onnx"
    path.write_bytes(hand_built())
    ok = CliRunner().invoke(main, ["validate", str(path)])
    assert ok.exit_code == 0 and ok.output.startswith("VALID: depth 5, top receptive field 22")
    small = CliRunner().invoke(main, ["validate", str(path), "--image-size", "20", "--plot", str(tmp_path / "v.svg")])
    assert small.exit_code == 1 and "INVALID" in small.output and (tmp_path / "v.svg").read_bytes().startswith(b"<?xml")
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    broken = CliRunner().invoke(main, ["validate", str(tmp_path / "broken.onnx")])
    assert broken.exit_code == 2 and "model" in broken.output


def test_a_file_mapped_into_memory_gives_the_report_of_its_bytes(tmp_path):
    """`validate_onnx_file` maps the file instead of reading it: the same report as `validate_onnx` of the
    bytes, with an initializer large enough to be skipped (128 KiB), and an empty file is refused."""
    model = onnx.load_from_string(hand_built())
    model.graph.initializer.append(numpy_helper.from_array(np.ones(32768, dtype=np.float32), "spare"))
    path = tmp_path / "wide.onnx"
    path.write_bytes(model.SerializeToString())
    assert validate_onnx_file(str(path), 32) == validate_onnx(path.read_bytes(), 32)[0]
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(OnnxImportError, match="is empty"):
        validate_onnx_file(str(tmp_path / "empty.onnx"))


def test_products_of_feature_maps_follow_the_conventions():
    """x * sigmoid(x) is an activation; a product of two different aligned maps is a merge (docs/theory.md#real-networks)."""
    swish = [
        helper.make_node("Sigmoid", ["c5"], ["s5"], name="sig"),
        helper.make_node("Mul", ["c5", "s5"], ["silu"], name="silu"),
        helper.make_node("GlobalMaxPool", ["silu"], ["out"], name="gmp"),
    ]
    report, imported = validate_onnx(hand_built(swish))
    assert [s.kind for s in report.analysis.layers][-1] == "global_maxpool" and "Sigmoid" in imported.passed_through
    assert report.analysis.by_name("gmp").inputs == ("conv5",)
    branch = [
        helper.make_node("Conv", ["padded", "w5"], ["c5b"], name="conv5b", kernel_shape=[3, 3]),
        helper.make_node("Mul", ["c5", "c5b"], ["prod"], name="prod"),
        helper.make_node("GlobalMaxPool", ["prod"], ["out"], name="gmp"),
    ]
    merged = validate_onnx(hand_built(branch))[0].analysis.by_name("prod")
    assert merged.kind == "add" and merged.inputs == ("conv5", "conv5b") and merged.receptive_field == (22, 22)


def test_every_unsupported_node_is_listed_and_attention_is_refused_by_name():
    nodes = [
        helper.make_node("LpNormalization", ["c5"], ["n5"], name="odd1"),
        helper.make_node("DepthToSpace", ["n5"], ["up"], name="upsample", blocksize=2),
        helper.make_node("Hardmax", ["up"], ["h"], name="odd2"),
        helper.make_node("MatMul", ["h", "h"], ["att"], name="attention"),
    ]
    with pytest.raises(OnnxImportError) as caught:
        validate_onnx(hand_built(nodes))
    reason = caught.value.reason
    assert reason.startswith("4 unsupported ONNX nodes: LpNormalization (node 'odd1')")
    assert "node 'upsample' is a DepthToSpace: the theory covers downsampling CNNs only" in reason
    assert "Hardmax (node 'odd2')" in reason and "MatMul (node 'attention'): a product of two feature maps" in reason


def test_resnet18_preset_round_trips_through_the_builder_and_onnx():
    """Residual adds and 1x1 stride-2 shortcuts: the imported graph has the preset's exact arithmetic."""
    from cnnplan.solver import validate
    from cnnplan.solver.presets import preset

    layers = preset("resnet18")
    module, _ = build_model(layers, 224)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (torch.zeros(1, 3, 224, 224),), buffer, dynamo=False, export_params=False)
    reference = validate(layers, 224)
    report, _ = validate_onnx(buffer.getvalue())

    def convs(analysis):
        return [
            (s.receptive_field, s.jump, s.effective_padding, s.c_value) for s in analysis.layers if s.kind == "conv"
        ]

    assert convs(report.analysis) == convs(reference.analysis)
    assert sum(1 for s in report.analysis.layers if s.kind == "add") == 8
    assert [(v.constraint, v.value, v.limit) for v in report.violations] == [
        (v.constraint, v.value, v.limit) for v in reference.violations
    ]


HAND_BUILT = hand_built()


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    edits=st.lists(st.tuples(st.integers(0, len(HAND_BUILT) - 1), st.integers(0, 255)), min_size=1, max_size=6),
    cut=st.one_of(st.none(), st.integers(0, len(HAND_BUILT))),
)
def test_corrupted_models_are_input_errors_never_crashes(edits, cut):
    """Byte-level corruption of a valid model: either a report or a SolverError naming a field, nothing else."""
    data = bytearray(HAND_BUILT)
    for position, value in edits:
        data[position] = value
    try:
        validate_onnx(bytes(data[:cut] if cut is not None else data))
    except SolverError as error:
        assert error.field and error.reason
