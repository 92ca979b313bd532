"""The one place that imports torchvision and timm beside a CPU build of torch (docs/integrations.md).

PyPI's torchvision wheels are CUDA builds; next to the CPU ``torch`` wheel their compiled operators do
not load, and ``import torchvision`` fails with ``operator torchvision::nms does not exist`` (timm
imports torchvision too). The only operators torchvision's import needs to exist are the two it
registers fake (meta) kernels for unconditionally: ``nms`` and ``qnms``. Defining their schemas with
`torch.library` before the import is enough for every classification model; calling them (detection
models) still fails, with torch's own "no kernel" error. Where torchvision's operators load, nothing is
defined.
"""

from __future__ import annotations

import threading
from types import ModuleType
from typing import Any

_MISSING_OPERATORS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_lock = threading.Lock()
_library: Any = None


def _operators_load() -> bool:
    """True when torchvision's compiled operators are already registered (a matching build)."""
    import torch

    try:
        torch.ops.torchvision.nms  # noqa: B018  attribute access resolves the operator
    except (AttributeError, RuntimeError):
        return False
    return True


def ensure_torchvision_operators() -> None:
    """Define the operator schemas ``import torchvision`` needs when its compiled library cannot supply them."""
    global _library
    with _lock:
        if _library is not None:
            return
        try:
            import torchvision.extension  # noqa: F401  loads the compiled operators where the build matches

            if _operators_load():
                _library = False
                return
        except Exception:  # a mismatched build fails in many ways (RuntimeError, OSError); the schemas fix each
            pass
        import torch

        library = torch.library.Library("torchvision", "FRAGMENT")
        for schema in _MISSING_OPERATORS:
            name = schema.split("(", 1)[0]
            if not torch._C._dispatch_has_kernel(f"torchvision::{name}") and not _has_schema(name):
                library.define(schema)
        _library = library


def _has_schema(name: str) -> bool:
    import torch

    try:
        torch._C._get_schema(f"torchvision::{name}", "")
    except RuntimeError:
        return False
    return True


def import_torchvision() -> ModuleType:
    """``import torchvision``, after `ensure_torchvision_operators`; ImportError when it is not installed."""
    ensure_torchvision_operators()
    import torchvision

    return torchvision


def import_timm() -> ModuleType:
    """``import timm`` (it imports torchvision), after `ensure_torchvision_operators`."""
    ensure_torchvision_operators()
    import timm

    return timm
