"""ONNX attributes mapped per axis (docs/geometry.md): rectangular kernels, strides and dilations, explicit
asymmetric pads, auto_pad SAME_UPPER / SAME_LOWER / VALID and ceil_mode, checked against ONNX's own shape
inference and against torch-exported modules; answers of an imported model post back unchanged."""

from __future__ import annotations

import io
import warnings

import httpx
import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from cnnplan.service.interop.onnx_import import OnnxImportError, validate_onnx
from cnnplan.solver import analyse


def _weight(name: str, *shape: int) -> TensorProto:
    return numpy_helper.from_array(np.zeros(shape, dtype=np.float32), name)


def _model(nodes, initializers, size=(31, 40)) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "geometry", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, *size])],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, [1, None, None, None])], initializers,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


GEOMETRY_NODES = [
    helper.make_node("Conv", ["x", "w1"], ["c1"], name="c1x7", kernel_shape=[1, 7], strides=[1, 2], pads=[0, 2, 0, 3]),
    helper.make_node("Conv", ["c1", "w2"], ["c2"], name="c7x1", kernel_shape=[7, 1], auto_pad="SAME_UPPER", strides=[2, 1]),
    helper.make_node("Conv", ["c2", "w3"], ["c3"], name="lower", kernel_shape=[3, 3], auto_pad="SAME_LOWER", strides=[2, 2]),
    helper.make_node("MaxPool", ["c3"], ["p1"], name="pool", kernel_shape=[3, 2], strides=[2, 2], ceil_mode=1),
    helper.make_node("Conv", ["p1", "w4"], ["c4"], name="dil", kernel_shape=[3, 3], dilations=[2, 1], pads=[2, 1, 2, 1]),
    helper.make_node("AveragePool", ["c4"], ["p2"], name="valid", kernel_shape=[2, 2], auto_pad="VALID"),
]  # fmt: skip
GEOMETRY_WEIGHTS = [
    _weight("w1", 4, 3, 1, 7),
    _weight("w2", 4, 4, 7, 1),
    _weight("w3", 4, 4, 3, 3),
    _weight("w4", 4, 4, 3, 3),
]


def test_per_axis_attributes_map_onto_the_solver_and_match_onnx_shape_inference() -> None:
    model = _model(GEOMETRY_NODES, GEOMETRY_WEIGHTS)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    shapes = {
        value.name: tuple(d.dim_value for d in value.type.tensor_type.shape.dim)[2:]
        for value in list(inferred.graph.value_info) + list(inferred.graph.output)
    }
    report, imported = validate_onnx(model.SerializeToString())
    layers = {layer.name: layer for layer in imported.layers}
    assert layers["c1x7"].kernel_size == (1, 7) and layers["c1x7"].padding == ((0, 0), (2, 3))
    assert layers["c7x1"].padding == "same_upper" and layers["lower"].padding == "same_lower"
    assert layers["pool"].ceil_mode is True and layers["dil"].dilation == (2, 1)
    stats = {layer.name: layer for layer in report.analysis.layers}
    for node in GEOMETRY_NODES:
        assert stats[node.name].output_size == shapes[node.output[0]], node.name
    # by hand: c1x7 r (1, 7), j (1, 2); c7x1 r (7, 7), j (2, 2); its SAME_UPPER pads on 31 rows at stride 2:
    # total (16 - 1) * 2 + 7 - 31 = 6, (3, 3); SAME_LOWER 3x3/2 on 16 x 20: total (8 - 1) * 2 + 3 - 16 = 1
    # rows, 1 columns, the larger half first -> (1, 0) on each axis
    assert stats["c1x7"].receptive_field == (1, 7) and stats["c1x7"].jump == (1, 2)
    assert stats["c7x1"].receptive_field == (7, 7) and stats["c7x1"].jump == (2, 2)
    assert stats["c7x1"].padding == ((3, 3), (0, 0)) and stats["lower"].padding == ((1, 0), (1, 0))


def test_a_torch_exported_module_with_rectangular_windows_and_ceil_mode_imports_exactly() -> None:
    module = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, (1, 7), padding=(0, 3)),
        torch.nn.Conv2d(4, 4, (7, 1), stride=(2, 1), padding=(3, 0)),
        torch.nn.MaxPool2d(3, 2, ceil_mode=True),
        torch.nn.AvgPool2d(2, 2, ceil_mode=True),
        torch.nn.Conv2d(4, 4, 3, stride=2, padding=1, dilation=(1, 2)),
    ).eval()
    x = torch.zeros(1, 3, 37, 29)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x,), buffer, dynamo=False)
    report, _ = validate_onnx(buffer.getvalue())
    sizes = []
    for layer in module:
        x = layer(x)
        sizes.append(tuple(x.shape[-2:]))
    assert [layer.output_size for layer in report.analysis.layers] == sizes
    assert report.analysis.layers[0].receptive_field == (1, 7)
    assert report.analysis.layers[1].receptive_field == (7, 7)


def test_transposed_convolutions_are_refused_by_name() -> None:
    nodes = [helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="deconv1", kernel_shape=[2, 2], strides=[2, 2])]
    model = _model(nodes, [_weight("w", 3, 4, 2, 2)])
    with pytest.raises(OnnxImportError) as caught:
        validate_onnx(model.SerializeToString())
    assert caught.value.field == "model.graph.node[0]"
    assert "'deconv1' is a ConvTranspose" in caught.value.reason and "downsampling CNNs only" in caught.value.reason


@pytest.mark.anyio
async def test_an_imported_models_answer_posts_back_unchanged(app):
    data = _model(GEOMETRY_NODES, GEOMETRY_WEIGHTS).SerializeToString()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        upload = await client.post("/validate", files={"model": ("m.onnx", data)}, data={"repair": "true"})
        assert upload.status_code == 200, upload.text
        report = upload.json()
        again = await client.post("/validate", json={"image_size": report["image_size"], "layers": report["layers"]})
        assert again.status_code == 200, again.text
        assert again.json()["layers"] == report["layers"]
        assert (again.json()["params"], again.json()["flops"]) == (report["params"], report["flops"])
    assert report["repair"] is not None and "graph" in report["repair"]
    assert analyse(report["layers"], report["image_size"], 3).params == report["params"]
