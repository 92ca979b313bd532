"""cnnplan against torchinfo, torchscan and fvcore: the time to analyse ResNet-50 (and VGG-16 from ONNX).

In one run, on this machine, each tool's median over ``--runs`` repetitions (after one untimed call):

* cnnplan, analytic: what POST /validate runs for ``{"preset": name, "image_size": 224}`` (the request
  model, the exact per-layer analysis of the preset's graph, checked once per process, and both
  constraints; no module, no tensor; the full answer's fixes included), the same with ``fixes=False``
  (what POST /validate?view=summary runs: the analysis and the verdict; the peers compute no fixes either),
  and the plain solver call ``validate(preset(name), 224)`` (which checks the graph on every call);
* cnnplan, ONNX file: ``validate_onnx_file`` (what ``cnnplan validate model.onnx`` runs: map the file into
  memory, parse it without its weights, import, analyse, check), and ``validate_onnx`` of the file's bytes
  read into memory first (what an upload to POST /validate/onnx pays once its body has arrived), for files
  written by both of torch's exporters (``torch.onnx.export(dynamo=False)``, the TorchScript one, and
  ``dynamo=True``, the torch.export one; the latter is skipped, with the reason printed, where it fails);
* cnnplan, PyTorch module: `validate_module(model, 224)` (what `cnnplan validate --torchvision` runs: torch.export
  traces the module, the lowered graph is read, analysed and checked), fewer runs (a trace takes seconds);
* torchinfo ``summary(model, input_size=(1, 3, 224, 224), verbose=0)``, torchscan
  ``crawl_module(model, (3, 224, 224))`` and fvcore ``FlopCountAnalysis(model, x).total()`` on the
  torchvision module built with random weights (each runs the model on a tensor, which is how they work).

Prints every median (wall clock, and CPU time of the process: with ``--threads 1`` the work itself,
free of the time spent waiting for a core on a loaded machine) and the ratio of the fastest peer to
each cnnplan path, by both clocks. The peers are the
``bench`` extra (``pip install -e .[bench]``); torchvision comes through
`cnnplan.service.interop.torch_compat.import_torchvision`. Usage::

    python benchmarks/peer_bench.py               # ResNet-50 (all paths) and VGG-16 (ONNX), 7 runs each
    python benchmarks/peer_bench.py --runs 11 --json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

MODELS = {"resnet50": "resnet50", "vgg16": "vgg16"}
"""cnnplan preset name -> torchvision builder."""


def median_seconds(action: Callable[[], object], runs: int) -> float:
    """Median wall time of `runs` calls of `action`, after one untimed call; the median CPU time of the
    process over the same calls is appended to `LAST_CPU` (with one torch thread, the work itself, free of the
    time the process waited for a core on a loaded machine)."""
    action()
    times, cpu_times = [], []
    for _ in range(runs):
        start, cpu = time.perf_counter(), time.process_time()
        action()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu)
    LAST_CPU.append(statistics.median(cpu_times))
    return statistics.median(times)


LAST_CPU: list[float] = []


def export_onnx(model, path: Path, dynamo: bool) -> str | None:
    """Write `model` to `path` with one of torch's exporters; None, or why it could not."""
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (torch.randn(1, 3, 224, 224),), str(path), dynamo=dynamo, opset_version=18)
    except Exception as error:  # an exporter that cannot handle the model on this torch: reported, not fatal
        return f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"
    return None


def peers(model, runs: int) -> dict[str, float]:
    """Median seconds of each peer on the built module."""
    import torch
    import torchinfo
    import torchscan
    from fvcore.nn import FlopCountAnalysis

    image = torch.randn(1, 3, 224, 224)

    def fvcore_total() -> int:
        analysis = FlopCountAnalysis(model, image)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return analysis.total()

    actions = {
        "torchinfo": lambda: torchinfo.summary(model, input_size=(1, 3, 224, 224), verbose=0),
        "torchscan": lambda: torchscan.crawl_module(model, (3, 224, 224)),
        "fvcore": fvcore_total,
    }
    timed: dict[str, float] = {}
    with torch.inference_mode(False), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for peer, action in actions.items():
            timed[peer] = median_seconds(action, runs)
            timed[f"cpu {peer}"] = LAST_CPU[-1]
    return timed


def run(names: list[str], runs: int) -> dict:
    import torch

    from cnnplan.service.convert import validate_body
    from cnnplan.service.interop.onnx_import import validate_onnx, validate_onnx_file
    from cnnplan.service.interop.torch_compat import import_torchvision
    from cnnplan.service.interop.torch_import import validate_module
    from cnnplan.service.schemas import ValidateRequestModel
    from cnnplan.solver import SolverError, validate
    from cnnplan.solver.presets import preset

    torchvision = import_torchvision()
    torch.manual_seed(0)
    report: dict = {"runs": runs, "torch_threads": torch.get_num_threads(), "load_before": os.getloadavg()[0]}
    for name in names:
        model = getattr(torchvision.models, MODELS[name])(weights=None).eval()
        row: dict = {}
        if name == "resnet50":
            body = {"preset": name, "image_size": 224}
            row["cnnplan preset"] = median_seconds(
                lambda body=body: validate_body(ValidateRequestModel.model_validate(body)), max(runs, 21)
            )
            row["cpu cnnplan preset"] = LAST_CPU[-1]
            row["cnnplan preset, view=summary"] = median_seconds(  # the analysis and the verdict, no fixes
                lambda body=body: validate_body(ValidateRequestModel.model_validate(body), fixes=False), max(runs, 21)
            )
            row["cpu cnnplan preset, view=summary"] = LAST_CPU[-1]
            row["cnnplan validate(preset(...))"] = median_seconds(
                lambda name=name: validate(preset(name), 224), max(runs, 21)
            )
            row["cpu cnnplan validate(preset(...))"] = LAST_CPU[-1]
        # The PyTorch path (`cnnplan validate --torchvision`): torch.export traces the module, then the graph is read.
        row["cnnplan module (torch.export trace)"] = median_seconds(
            lambda model=model: validate_module(model, 224), max(3, runs // 2)
        )
        row["cpu cnnplan module (torch.export trace)"] = LAST_CPU[-1]
        with tempfile.TemporaryDirectory() as scratch:
            for exporter, dynamo in (("torchscript", False), ("dynamo", True)):
                path = Path(scratch) / f"{name}-{exporter}.onnx"
                problem = export_onnx(model, path, dynamo)
                key = f"cnnplan onnx ({exporter} exporter)"
                if problem is not None:
                    row[key] = None
                    row[f"{key} skipped"] = problem
                    continue
                row[f"{key} file MB"] = round(path.stat().st_size / 1e6, 1)
                try:
                    row[key] = median_seconds(lambda path=path: validate_onnx_file(str(path), 224), runs)
                    row[f"cpu {key}"] = LAST_CPU[-1]
                    read = f"{key}, bytes read first"
                    row[read] = median_seconds(lambda path=path: validate_onnx(path.read_bytes(), 224), runs)
                    row[f"cpu {read}"] = LAST_CPU[-1]
                except SolverError as error:  # the importer refuses this exporter's graph: reported, not fatal
                    row[key] = None
                    row[f"{key} skipped"] = f"the importer refuses it: {error.field}: {error.reason[:100]}"
        row.update(peers(model, runs))
        report[name] = row
    report["load_after"] = os.getloadavg()[0]
    return report


def print_report(report: dict, names: list[str]) -> None:
    print(f"medians of {report['runs']} runs (after one untimed call); torch threads {report['torch_threads']}; "
          f"load average {report['load_before']:.2f} before, {report['load_after']:.2f} after ({os.cpu_count()} CPUs)")  # fmt: skip
    for name in names:
        row = report[name]
        fastest_peer = min(row[peer] for peer in ("torchinfo", "torchscan", "fvcore"))
        fastest_cpu = min(row[f"cpu {peer}"] for peer in ("torchinfo", "torchscan", "fvcore"))
        print(f"\n{name}:  (wall-clock median; CPU-time median of the process; ratios: fastest peer / this)")
        for key, value in row.items():
            if key.endswith("skipped") or key.endswith("file MB") or key.startswith("cpu "):
                continue
            if value is None:
                reason = row.get(f"{key} skipped", "not measured")
                print(f"  {key:<54} {'-':>10}   ({reason})")
                continue
            extra = f"  file {row[key + ' file MB']} MB" if f"{key} file MB" in row else ""
            cpu = row[f"cpu {key}"]
            ratio = (f"  wall {fastest_peer / value:7.1f}x  CPU {fastest_cpu / cpu:7.1f}x"
                     if key.startswith("cnnplan") else "")  # fmt: skip
            print(f"  {key:<54} {value * 1000:10.2f} ms  CPU {cpu * 1000:10.2f} ms{ratio}{extra}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="Timed repetitions per tool (the preset path: >= 21).")
    parser.add_argument("--models", nargs="+", choices=tuple(MODELS), default=list(MODELS))
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own).")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    report = run(args.models, args.runs)
    print_report(report, args.models)
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
