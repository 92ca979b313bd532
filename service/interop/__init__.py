"""Interoperability with other tools: ONNX import (`onnx_import`), PyTorch source export (`pytorch_export`)
and diagrams (`diagrams`, matplotlib). Each module turns the solver's objects into or out of another
format; none of them knows about HTTP. Model importers (PyTorch modules, zoo presets) belong here.
"""
