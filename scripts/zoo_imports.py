"""Export every zoo model with both exporters at its native resolution and import it; write docs/zoo_imports.json.

    python scripts/zoo_imports.py [--sample] [--only NAME ...] [--machine "2-core CPU, shared"]

``--only`` reruns the named models and replaces their results in the recorded run (listed under ``reruns``).

Random weights; each model is exported with ``torch.onnx.export`` (default ``dynamo=True`` and ``dynamo=False``)
and read by `validate_onnx` (a model past protobuf's 2 GiB: written as a file with external data and read by
`validate_onnx_file`); a result is "ok" or the first 300 characters of the error. scripts/zoo_report.py
puts the summary (N of M imported, per family, both exporters) in docs/zoo.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import tempfile
import time
from pathlib import Path

import torch

from cnnplan.service.interop.onnx_import import validate_onnx, validate_onnx_file
from cnnplan.service.interop.torch_compat import import_timm, import_torchvision
from cnnplan.service.interop.zoo import (
    EXPORTERS,
    PROTOBUF_LIMIT,
    build,
    export_onnx,
    export_onnx_file,
    preset_key,
    stored_bytes,
    timm_zoo,
    torchvision_zoo,
)

TARGET = Path(__file__).resolve().parents[1] / "docs" / "zoo_imports.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", action="store_true", help="one model per family")
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--machine", default="2-core CPU, shared")
    parser.add_argument("--output", type=Path, default=TARGET)
    args = parser.parse_args()
    zoo = torchvision_zoo() + timm_zoo()
    if args.sample:
        seen: set[tuple[str, str]] = set()
        zoo = [e for e in zoo if (e.source, e.family) not in seen and not seen.add((e.source, e.family))]
    if args.only:
        zoo = [e for e in zoo if preset_key(e) in args.only]
    results = []
    for entry in zoo:
        model = build(entry.source, entry.name)
        result = {"source": entry.source, "name": entry.name, "family": entry.family, "image_size": entry.image_size}
        for exporter in EXPORTERS:
            start = time.perf_counter()
            try:
                if stored_bytes(model) < PROTOBUF_LIMIT:
                    validate_onnx(export_onnx(model, entry.image_size, exporter))
                else:  # too large for one protobuf message: a file with external data, read as users read theirs
                    with tempfile.TemporaryDirectory() as scratch:
                        path = Path(scratch) / f"{entry.name}.onnx"
                        export_onnx_file(model, entry.image_size, exporter, path)
                        validate_onnx_file(str(path))
                    result["external_data"] = True
                result[exporter] = "ok"
            except Exception as error:  # noqa: BLE001  every failure is recorded, none stops the run
                result[exporter] = f"{type(error).__name__}: {str(error)[:300]}"
            result[f"{exporter}_seconds"] = round(time.perf_counter() - start, 1)
        print(preset_key(entry), result["dynamo"][:80], "|", result["torchscript"][:80], flush=True)
        results.append(result)
    command = "python scripts/zoo_imports.py" + (" --sample" if args.sample else "")
    versions = (f"torch {torch.__version__}, torchvision {import_torchvision().__version__}, "
                f"timm {import_timm().__version__}")  # fmt: skip
    today = datetime.date.today().isoformat()
    run = {"command": command, "machine": args.machine, "date": today, "versions": versions, "results": results}
    if args.only and args.output.exists():  # a rerun of some models: replaced in the recorded run, dated
        run = json.loads(args.output.read_text())
        fresh = {(r["source"], r["name"]): r for r in results}
        run["results"] = [fresh.pop((r["source"], r["name"]), r) for r in run["results"]] + list(fresh.values())
        run["reruns"] = [*run.get("reruns", []), {"date": today, "machine": args.machine, "versions": versions,
                                                  "only": sorted(args.only)}]  # fmt: skip
    args.output.write_text(json.dumps(run, indent=1) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
