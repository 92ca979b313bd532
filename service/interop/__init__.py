"""Interoperability with other tools: ONNX import (`onnx_import`), PyTorch source export (`pytorch_export`),
diagrams (`diagrams`, matplotlib) and the torchvision/timm import shim (`torch_compat`). Each module turns
the solver's objects into or out of another format; none of them knows about HTTP. Model importers
(PyTorch modules, zoo presets) belong here. See docs/integrations.md and docs/architecture.md#where-to-add.
"""
