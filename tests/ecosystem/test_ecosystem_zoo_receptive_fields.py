"""Receptive-field ground truth by gradients for zoo models (docs/theory.md#layer-arithmetic against autograd).

The geometry replica of a feature extractor keeps every window (kernel, stride, dilation, padding, ceil_mode) and
drops everything else that could hide a pixel: in float64, each convolution sums its input channels and applies
one all-ones filter of the same geometry (a replica with one channel), batch and layer norms and activations
become identities, max pools become average pools of the same window, linear layers (ConvNeXt's MLP on NHWC)
sum the channels. With every weight positive nothing cancels, so the support of the input gradient of the centre
output unit is exactly that unit's receptive field; the input is doubled until the support touches no border.
The imported graph of the real model must give the same receptive field for its last feature map.
Inception-v3's 1x7 and 7x1 kernels go through the per-axis arithmetic (docs/geometry.md).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from cnnplan.service.interop.torch_import import module_graph
from cnnplan.service.interop.zoo import build
from cnnplan.solver import analyse

ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.GELU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Dropout)
NORMS = (nn.BatchNorm2d, nn.LayerNorm)


class _ChannelSumConv(nn.Module):
    """Sum the input channels, then one all-ones filter with the original window."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, conv.kernel_size, conv.stride, conv.padding, conv.dilation, bias=False)
        nn.init.ones_(self.conv.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.sum(1, keepdim=True))


class _ChannelSumLinear(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(-1, keepdim=True)


def geometry_replica(module: nn.Module) -> nn.Module:
    """`module` with its layers replaced as the module docstring says (in place), in float64 and eval mode."""
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d):
            replacement: nn.Module = _ChannelSumConv(child)
        elif isinstance(child, nn.MaxPool2d):
            replacement = nn.AvgPool2d(child.kernel_size, child.stride, child.padding, child.ceil_mode)
        elif isinstance(child, nn.Linear):
            replacement = _ChannelSumLinear()
        elif isinstance(child, ACTIVATIONS + NORMS):
            replacement = nn.Identity()
        else:
            geometry_replica(child)
            continue
        setattr(module, name, replacement)
    for parameter in module.parameters(recurse=False):  # e.g. ConvNeXt's layer scale: made positive
        parameter.data = parameter.data.abs() + 1
    return module.double().eval()


def _functional_replica(monkeypatch: pytest.MonkeyPatch) -> None:
    """The functional calls of the docstring's replacements too (Inception's ``F.max_pool2d`` branch pools and
    ``F.relu`` in ``BasicConv2d``): average pools of the same window and identities, while `monkeypatch` lasts."""

    def average_pool(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
        assert dilation == 1 and not return_indices
        return F.avg_pool2d(x, kernel_size, stride, padding, ceil_mode)

    monkeypatch.setattr(F, "max_pool2d", average_pool)
    monkeypatch.setattr(F, "relu", lambda x, inplace=False: x)


def gradient_receptive_field(features: nn.Module, start: int) -> tuple[int, int]:
    """(rows, columns) spanned by the input gradient of the centre output unit, on an input large enough that
    they do not touch its border (from `start` pixels, doubled until then; the start only saves time, the border
    check is what makes the measurement valid)."""
    size = start
    while True:
        x = torch.zeros(1, 3, size, size, dtype=torch.float64, requires_grad=True)
        out = features(x)
        out[0, :, out.shape[2] // 2, out.shape[3] // 2].sum().backward()
        support = x.grad[0].abs().sum(0) > 0
        rows, columns = (support.any(axis).nonzero().flatten() for axis in (1, 0))
        if min(rows[0], columns[0]) > 0 and max(rows[-1], columns[-1]) < size - 1:
            return int(rows[-1] - rows[0] + 1), int(columns[-1] - columns[0] + 1)
        size *= 2


def _resnet50(model):
    return nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool, model.layer1, model.layer2,
                         model.layer3, model.layer4)  # fmt: skip


def _inception_v3(model):
    names = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
             "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
             "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"]  # fmt: skip
    return nn.Sequential(*(getattr(model, name) for name in names))


CASES = [
    ("resnet50", _resnet50, 64),
    ("mobilenet_v2", lambda model: model.features, 64),
    ("inception_v3", _inception_v3, 96),  # 1x7 and 7x1 kernels: per-axis geometry
    ("densenet121", lambda model: model.features, 64),
    ("convnext_tiny", lambda model: model.features, 64),
]


@pytest.mark.parametrize(("name", "features_of", "size"), CASES)
def test_receptive_field_of_the_last_feature_map_matches_gradients(name, features_of, size, monkeypatch):
    features = features_of(build("torchvision", name))
    imported = module_graph(features, size).imported
    analysis = analyse(imported.layers, size, imported.in_channels)
    expected = analysis.layers[-1].receptive_field  # (height, width)
    assert expected == tuple(max(layer.receptive_field[axis] for layer in analysis.layers) for axis in (0, 1))
    with monkeypatch.context() as patch:
        _functional_replica(patch)
        measured = gradient_receptive_field(geometry_replica(features), start=max(expected) // 32 * 32 + 64)
    assert measured == expected
