"""Time of reading a zoo model's ONNX file, with and without skipping the weights at the wire level.

    python benchmarks/onnx_import_time.py [--repeat 5] [--exporter torchscript|dynamo] [MODEL ...]

For each torchvision model (default: resnet50 vgg16, random weights, 224 px) the file is exported once, then
read `repeat` times both ways; the median of each and their ratio are printed:

- ``full``: ``onnx.ModelProto.FromString(data)`` on the whole file, then `import_graph` (the reading before
  `onnx_wire.strip_weights`: every weight is copied into the message);
- ``stripped``: `load_model` (initializer data over 64 KiB dropped while parsing), then `import_graph`.
"""

from __future__ import annotations

import argparse
import statistics
import time

import onnx

from cnnplan.service.interop.onnx_import import import_graph, load_model
from cnnplan.service.interop.zoo import build, export_onnx


def _median_seconds(read, data: bytes, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        import_graph(read(data))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=["resnet50", "vgg16"])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--exporter", choices=("torchscript", "dynamo"), default="torchscript")
    args = parser.parse_args()
    print(f"{'model':<12} {'file MB':>8} {'full ms':>9} {'stripped ms':>12} {'speed-up':>9}")
    for name in args.models:
        data = export_onnx(build("torchvision", name), 224, args.exporter)
        full = _median_seconds(onnx.ModelProto.FromString, data, args.repeat)
        stripped = _median_seconds(load_model, data, args.repeat)
        print(f"{name:<12} {len(data) / 1e6:>8.1f} {full * 1e3:>9.1f} {stripped * 1e3:>12.1f} {full / stripped:>8.1f}x")


if __name__ == "__main__":
    main()
