"""Regenerate the zoo presets (solver/zoo_presets.json) from the installed torchvision and timm.

    python scripts/zoo_presets.py [--sample] [--only NAME ...]

Each model of `cnnplan.service.interop.zoo` (random weights) is traced at its native resolution and stored as a
compact graph with its source, versions and ``sum(p.numel() for p in model.parameters())``. ``--sample`` writes
one model per family (what is shipped until a full run); models that cannot be read yet (the per-axis geometry
of issue 10) are reported and left out. The server reads the file with no torch installed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from cnnplan.service.interop.zoo import preset_entry, preset_key, timm_zoo, torchvision_zoo
from cnnplan.solver import SolverError

TARGET = Path(__file__).resolve().parents[1] / "solver" / "zoo_presets.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", action="store_true", help="one model per family (the smallest listed)")
    parser.add_argument("--only", nargs="*", help="preset names (tv.resnet18, timm.rexnet_100) to regenerate")
    parser.add_argument("--output", type=Path, default=TARGET)
    args = parser.parse_args()
    zoo = torchvision_zoo() + timm_zoo()
    if args.sample:
        seen: set[tuple[str, str]] = set()
        zoo = [e for e in zoo if (e.source, e.family) not in seen and not seen.add((e.source, e.family))]
    if args.only:
        zoo = [e for e in zoo if preset_key(e) in args.only]
    presets = json.loads(args.output.read_text()) if args.output.exists() and args.only else {}
    for entry in zoo:
        start = time.perf_counter()
        try:
            presets[preset_key(entry)] = preset_entry(entry)
            print(f"{preset_key(entry)}: {len(presets[preset_key(entry)]['nodes'])} nodes, "
                  f"{time.perf_counter() - start:.1f} s", flush=True)  # fmt: skip
        except SolverError as error:
            print(f"{preset_key(entry)}: skipped, {error.field}: {error.reason[:200]}", file=sys.stderr, flush=True)
    args.output.write_text(json.dumps(dict(sorted(presets.items())), separators=(",", ":")) + "\n")
    print(f"wrote {len(presets)} presets to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
