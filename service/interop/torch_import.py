"""PyTorch in, directly: an ``nn.Module`` and an image size as the solver's layer graph.

The module is traced with ``torch.export`` (non-strict: the Python of ``forward`` runs on fake tensors of the
given image size) and lowered by ``torch.onnx`` to an in-memory ONNX graph, without the exporter's optimiser
(so batch norms stay nodes and nothing is folded); `onnx_import.import_graph` reads that graph, so the two paths
share one set of conventions (docs/theory.md#real-networks). Why this route rather than ``torch.fx.symbolic_trace``:
torch.export records concrete shapes for every tensor (the reshapes of a channel shuffle need them) and traces
through ``torch.cat``/``split``/``permute`` written in any style; fx's symbolic trace stops at any shape-dependent
Python. Its limits are torch.export's: data-dependent control flow (``if x.sum() > 0``) or calls torch cannot
trace stop the trace, and the error names the first such call (`TorchTraceError`). The parameter count is the
module's own, ``sum(p.numel() for p in model.parameters())``.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import traceback
import warnings
from dataclasses import dataclass
from typing import Any

from cnnplan.service.interop.onnx_import import OnnxImport, import_graph
from cnnplan.solver import SolverError, ValidationReport, analyse, check_constraints, parse_min_c_value
from cnnplan.solver.analysis import ImageSize, normalize_image_size
from cnnplan.solver.presets import unlisted_params_notes


class TorchTraceError(SolverError):
    """The module could not be traced (or built): the reason names the first call that failed."""

    code = "untraceable_module"


@dataclass(frozen=True)
class TorchImport:
    """The graph read from a module: the ONNX-path import plus the module's exact parameter count."""

    imported: OnnxImport
    params: int
    image_size: tuple[int, int]
    unused_modules: tuple[str, ...] = ()
    """Modules holding parameters that the forward pass never calls (GoogLeNet's auxiliary heads in eval mode)."""
    unused_params: int = 0
    """Their parameters: counted in `params`, absent from the graph's layers."""

    @property
    def notes(self) -> tuple[str, ...]:
        """The import's notes, and one on parameters that the graph does not hold."""
        # the import's notes already say what element-wise operators read
        return self.imported.notes + unlisted_params_notes(self.params, self.unused_params, self.unused_modules)

    @property
    def elementwise_params(self) -> int:
        """Parameters read by element-wise operators (`OnnxImport.elementwise_params`), in no layer."""
        return self.imported.elementwise_params


def module_graph(model: Any, image_size: ImageSize, in_channels: int = 3, field: str = "module") -> TorchImport:
    """Trace `model` (an ``nn.Module``, put in eval mode) on a 1 x `in_channels` x H x W input and read its graph.

    Raises `TorchTraceError` naming the first untraceable call, `OnnxImportError` for unsupported operators."""
    import torch

    height, width = normalize_image_size(image_size)
    if not isinstance(model, torch.nn.Module):
        raise TorchTraceError(field, f"must be a torch.nn.Module, got {type(model).__name__}")
    model = model.eval()
    example = torch.zeros(1, in_channels, height, width)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(model, (example,), dynamo=True, optimize=False, verbose=False)
    except Exception as error:  # noqa: BLE001  torch.export fails in many ways; each is named for the user
        raise TorchTraceError(field, f"cannot be traced by torch.export: {_first_failure(error)}") from None
    if program is None:  # torch returns None only when it wrote to a file, which this call does not ask for
        raise TorchTraceError(field, "torch.onnx.export returned no program")
    imported = import_graph(program.model_proto, field=field)
    params = sum(p.numel() for p in model.parameters())
    unused = _unused_modules(model, example)
    unused_params = sum(p.numel() for name in unused for p in model.get_submodule(name).parameters(recurse=False))
    return TorchImport(imported, params, (height, width), unused, unused_params)


def _unused_modules(model: Any, example: Any) -> tuple[str, ...]:
    """Names of the modules owning parameters directly that one forward pass on `example` does not call."""
    import torch

    owners = {
        name: module
        for name, module in model.named_modules()
        if next(module.parameters(recurse=False), None) is not None
    }
    called: set[str] = set()
    hooks = [module.register_forward_pre_hook(lambda _m, _a, name=name: called.add(name))
             for name, module in owners.items()]  # fmt: skip
    try:
        with torch.no_grad():
            model(example)
    finally:
        for hook in hooks:
            hook.remove()
    return tuple(name for name in owners if name not in called)


def validate_module(
    model: Any,
    image_size: ImageSize,
    min_c_value: object = None,
    include_pointwise: bool = False,
    rf_side: str = "min",
) -> tuple[ValidationReport, TorchImport]:
    """`module_graph`, then both constraints (docs/theory.md#constraints) at `image_size`."""
    t = parse_min_c_value(min_c_value)
    traced = module_graph(model, image_size)
    analysis = analyse(traced.imported.layers, traced.image_size, traced.imported.in_channels)
    return check_constraints(analysis, t, include_pointwise, rf_side), traced  # type: ignore[arg-type]


def build_named_model(source: str, name: str) -> Any:
    """A model with random weights: ``torchvision`` ``get_model(name)``, ``timm`` ``create_model(name)``, or
    ``module`` ``package.module:factory`` (the factory is called with no arguments). Imports go through
    `torch_compat` (torchvision's operator schemas on a CPU torch)."""
    from cnnplan.service.interop.torch_compat import import_timm, import_torchvision

    try:
        if source == "torchvision":
            models = import_torchvision().models
            if name not in models.list_models():
                raise TorchTraceError("torchvision", f"is not a torchvision model name: {name!r}")
            return models.get_model(name, weights=None)
        if source == "timm":
            timm = import_timm()
            if not timm.is_model(name):
                raise TorchTraceError("timm", f"is not a timm model name: {name!r}")
            return timm.create_model(name, pretrained=False)
        module_name, _, factory = name.partition(":")
        if not module_name or not factory:
            raise TorchTraceError("module", f"must be package.module:factory, got {name!r}")
        return getattr(importlib.import_module(module_name), factory)()
    except ImportError as error:
        raise TorchTraceError(source, f"cannot import {error.name or name}: {error}") from None
    except AttributeError as error:
        raise TorchTraceError(source, f"{name!r}: {error}") from None


def _first_failure(error: BaseException) -> str:
    """The innermost exception's message and the first frame outside torch where it was raised."""
    chain = [error]
    while chain[-1].__cause__ is not None and len(chain) < 16:
        chain.append(chain[-1].__cause__)
    root = chain[-1]
    message = str(root).strip().splitlines()[0][:300] if str(root).strip() else type(root).__name__
    import torch

    torch_dir = os.path.dirname(os.path.dirname(torch.__file__ or ""))
    frames = [f for cause in chain for f in traceback.extract_tb(cause.__traceback__)]
    user = [f for f in frames if not f.filename.startswith(torch_dir) and "/torch/" not in f.filename]
    user = [f for f in user if not f.filename.endswith("torch_import.py")]
    where = f" (at {user[-1].filename}:{user[-1].lineno} in {user[-1].name}: {user[-1].line})" if user else ""
    return f"{type(root).__name__}: {message}{where}"


__all__ = ["TorchImport", "TorchTraceError", "build_named_model", "module_graph", "validate_module"]
