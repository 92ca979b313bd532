"""The ``cnnplan`` command line (click): serve, plan, validate, openapi; other areas add commands with
``main.add_command(...)``.

Exit codes: 0 success (``validate``: the architecture is valid), 1 ``validate`` found a constraint
violation, 2 bad input (unreadable file, malformed architecture, bad option).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import click
from pydantic import ValidationError

from cnnplan.service.api.formats import report_title
from cnnplan.service.convert import (
    plan_dict,
    repair_dict,
    report_dict,
    to_plan_request,
    validate_answer_dict,
    validate_body,
)
from cnnplan.service.interop.pytorch_export import plan_source
from cnnplan.service.problems import ProblemError, invalid_field, problem_for_exception
from cnnplan.service.schemas import (
    DEFAULT_MIN_C_VALUE_TEXT,
    PlanRequestModel,
    ValidateRequestModel,
    parse_image_size_text,
)
from cnnplan.service.settings import get_settings
from cnnplan.solver import make_plan
from cnnplan.solver.errors import SolverError
from cnnplan.solver.presets import preset_params, preset_params_notes
from cnnplan.solver.repair import repair as repair_architecture

EXIT_OK = 0
EXIT_VIOLATION = 1
EXIT_BAD_INPUT = 2


class ImageSizeParam(click.ParamType):
    """``224`` or ``224x160`` (height x width), read by `parse_image_size_text` (sides 1..2^20)."""

    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | tuple[int, int]:
        if isinstance(value, (int, tuple)):
            return value
        try:
            return parse_image_size_text(str(value))
        except SolverError as error:
            self.fail(f"{error.field}: {error.reason}", param, ctx)


IMAGE_SIZE = ImageSizeParam()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cnnplan", message="cnnplan %(version)s")
def main() -> None:
    """Design very deep CNNs from first principles: plan, validate, serve."""


@main.command()
@click.option("--host", default=lambda: get_settings().host, show_default="CNNPLAN_HOST or 127.0.0.1")
@click.option("--port", type=click.IntRange(0, 65535), default=lambda: get_settings().port, show_default="8000")
@click.option("--workers", type=click.IntRange(1, 64), default=lambda: get_settings().workers, show_default="1")
def serve(host: str, port: int, workers: int) -> None:
    """Run the REST API (service.app:app) under uvicorn."""
    import uvicorn

    from cnnplan.service.worker.embedded import embedded_worker

    settings = get_settings()
    with embedded_worker(settings):  # CNNPLAN_EMBEDDED_WORKER=false to run the API alone
        uvicorn.run(
            "cnnplan.service.api.app:app",
            host=host,
            port=port,
            workers=workers,
            log_level=settings.log_level,
            timeout_keep_alive=settings.keep_alive_timeout,
        )


def fail(error: Exception) -> None:
    """Print a client error as 'error: field: reason' lines on stderr and exit 2."""
    problem = problem_for_exception(error)
    for item in problem.get("errors") or [
        {"field": problem.get("field") or "input", "reason": problem.get("reason") or problem["detail"]}
    ]:
        click.echo(f"error: {item['field']}: {item['reason']}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Left-aligned text columns, one header line and a rule."""
    cells = [[("-" if value is None else str(value)) for value in row] for row in rows]
    widths = [max([len(header)] + [len(row[i]) for row in cells]) for i, header in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)
    return "\n".join(lines)


LAYER_COLUMNS = ("name", "type", "level", "k", "s", "pad", "out", "output", "rf", "jump", "P", "real", "c")


def axes_cell(pair: Sequence[Any] | None) -> Any:
    """One value when both axes agree, else ``h x w`` (a table cell of a per-axis quantity)."""
    if pair is None:
        return None
    return pair[0] if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


def padding_cell(padding: Sequence[Sequence[int]]) -> str:
    """``p/p`` for equal sides on both axes, else ``top/bottom,left/right``."""
    (top, bottom), (left, right) = padding
    if (top, bottom) == (left, right):
        return f"{top}/{bottom}"
    return f"{top}/{bottom},{left}/{right}"


def layer_rows(layers: Iterable[dict[str, Any]]) -> list[list[Any]]:
    """Table rows of the per-layer statistics (c shown as the exact fraction, per axis where they differ)."""
    return [
        [
            layer["name"],
            layer["type"],
            layer["level"],
            axes_cell(layer["kernel_size"]),
            axes_cell(layer["stride"]),
            padding_cell(layer["padding"]),
            layer["out_channels"],
            "{}x{}".format(*layer["output_size"]),
            axes_cell(layer["receptive_field"]),
            axes_cell(layer["jump"]),
            axes_cell(layer["effective_padding"]),
            axes_cell(layer["real_filter_size"]),
            axes_cell(layer["c_value_exact"]),
        ]
        for layer in layers
    ]


def echo_json(data: Any) -> None:
    """Pretty, stable JSON on stdout."""
    click.echo(json.dumps(data, indent=2))


@main.command()
@click.argument("image_size", type=IMAGE_SIZE)
@click.option("--kernel-size", "-k", type=int, default=3, show_default=True, help="Odd kernel size, 3..31.")
@click.option(
    "--min-c-value", "-t", default=DEFAULT_MIN_C_VALUE_TEXT, show_default=True, help="Minimum c-value: a number or p/q."
)
@click.option("--model", type=click.Choice(["exact", "simplified"]), default="exact", show_default=True)
@click.option("--downsample", type=click.Choice(["maxpool", "avgpool", "conv"]), default="maxpool", show_default=True)
@click.option("--in-channels", type=int, default=3, show_default=True)
@click.option("--num-classes", type=int, default=1000, show_default=True)
@click.option("--dropout", type=float, default=0.5, show_default=True)
@click.option("--width-base", type=int, default=64, show_default=True, help="Filters in stage 1.")
@click.option("--width-multiplier", type=int, default=2, show_default=True, help="Growth per stage.")
@click.option("--max-width", type=int, default=512, show_default=True, help="Cap on filters per stage.")
@click.option("--no-batch-norm", is_flag=True, help="Convolutions with bias instead of BN.")
@click.option(
    "--block",
    type=click.Choice(["plain", "basic", "bottleneck", "inverted_residual"]),
    default="plain",
    show_default=True,
    help="Block style of the stages.",
)
@click.option(
    "--stem",
    type=click.Choice(["none", "conv", "conv_pool"]),
    default="none",
    show_default=True,
    help="Before stage 1: a k x k stride-2 conv (conv), and a 2x2 pool (conv_pool).",
)
@click.option("--expansion", type=int, default=None, help="Expansion factor (bottleneck: 4, inverted_residual: 6).")
@click.option("--max-flops", type=int, default=None, help="FLOPs budget: the widest width rule that fits.")
@click.option("--max-params", type=int, default=None, help="Parameter budget: the widest width rule that fits.")
@click.option("--json", "as_json", is_flag=True, help="Print the POST /plan response body instead of tables.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json", "pytorch"]),
    default="table",
    show_default=True,
    help="pytorch: print a standalone torch module source for the plan.",
)
@click.option(
    "--plot", type=click.Path(dir_okay=False, writable=True), help="Write the plan diagram (SVG, or PNG by suffix)."
)
def plan(
    image_size: int | tuple[int, int],
    kernel_size: int,
    min_c_value: str,
    model: str,
    downsample: str,
    in_channels: int,
    num_classes: int,
    dropout: float,
    width_base: int,
    width_multiplier: int,
    max_width: int,
    no_batch_norm: bool,
    block: str,
    stem: str,
    expansion: int | None,
    max_flops: int | None,
    max_params: int | None,
    as_json: bool,
    output_format: str,
    plot: str | None,
) -> None:
    """Plan the deepest valid network for IMAGE_SIZE (224 or 224x160)."""
    try:
        body = PlanRequestModel.model_validate(
            {
                "image_size": image_size,
                "kernel_size": kernel_size,
                "min_c_value": min_c_value,
                "model": model,
                "downsample": downsample,
                "in_channels": in_channels,
                "num_classes": num_classes,
                "dropout": dropout,
                "widths": {"base": width_base, "multiplier": width_multiplier, "max_width": max_width},
                "batch_norm": not no_batch_norm,
                "block": block,
                "stem": stem,
                "expansion": expansion,
                "max_flops": max_flops,
                "max_params": max_params,
            }
        )
        planned = make_plan(to_plan_request(body))
        result = plan_dict(planned)
        if plot is not None:
            from cnnplan.service.interop.diagrams import plan_title

            write_plot(planned.report, plan_title(planned), plot, spatial_only=planned.request.block != "plain")
    except (SolverError, ValidationError, ProblemError) as error:
        fail(error)
        return
    if output_format == "pytorch":
        click.echo(plan_source(planned), nl=False)
        return
    if as_json or output_format == "json":
        echo_json(result)
        return
    inputs = result["inputs"]
    relaxed = result["relaxed"]
    click.echo(
        f"image {inputs['image_size'][0]}x{inputs['image_size'][1]}, kernel {inputs['kernel_size']}, "
        f"t = {inputs['min_c_value_exact']}, model {inputs['model']}, downsample {inputs['downsample']}, "
        f"block {inputs['block']}, stem {inputs['stem']}"
    )
    click.echo(
        f"depth {result['depth']}  stages {result['stages']}  top receptive field {axes_cell(result['top_receptive_field'])}"
    )
    if result["stem"] is not None:
        stem_effect = result["stem"]
        click.echo(
            f"without the stem: depth {stem_effect['depth_without_stem']}, "
            f"FLOPs {stem_effect['flops_without_stem']:,}, params {stem_effect['params_without_stem']:,}"
        )
    if result["budget"] is not None:
        widths = result["budget"]["widths"]
        click.echo(
            f"budget: widths base {widths['base']}, multiplier {widths['multiplier']}, max {widths['max_width']}"
        )
    click.echo(f"relaxed optimum: stages [{', '.join(relaxed['stages_exact'])}], depth {relaxed['depth_exact']}")
    click.echo(f"params {result['params']:,}  FLOPs {result['flops']:,}")
    click.echo()
    click.echo(format_table(LAYER_COLUMNS, layer_rows(result["layers"])))


def read_architecture(path: str) -> dict[str, Any]:
    """A validate body from a JSON file ('-' = stdin): a full body, a list of layers, or {"nodes": [...]}."""
    try:
        with click.open_file(path, "r", encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, UnicodeDecodeError) as error:
        raise invalid_field("file", f"cannot read {path}: {error}", code="bad_file") from None
    except json.JSONDecodeError as error:
        raise invalid_field("file", f"{path} is not valid JSON: {error}", code="bad_file") from None
    if isinstance(data, list):
        return {"layers": data}
    if isinstance(data, dict) and "nodes" in data and "graph" not in data:
        return {"graph": data}
    if isinstance(data, dict):
        return data
    raise invalid_field("file", f"{path}: expected a JSON object or list of layers", code="bad_file")


@main.command()
@click.argument("architecture", required=False, metavar="[ARCH.json|MODEL.onnx|-]")
@click.option("--preset", help="A preset name (see GET /presets) instead of a file.")
@click.option("--image-size", type=IMAGE_SIZE, help="224 or 224x160; required unless the file or preset gives it.")
@click.option("--min-c-value", "-t", help=f"Minimum c-value (default {DEFAULT_MIN_C_VALUE_TEXT}, or the file's).")
@click.option("--include-pointwise", is_flag=True, default=None, help="Also constrain 1x1 convolutions.")
@click.option("--json", "as_json", is_flag=True, help="Print the POST /validate response body instead of tables.")
@click.option(
    "--plot", type=click.Path(dir_okay=False, writable=True), help="Write the diagram (SVG, or PNG by suffix)."
)
@click.option("--classifier-from", help="ONNX only: node name where the unconstrained classifier level starts.")
@click.option("--repair", is_flag=True, help="Also print the repaired architecture (every safe fix applied).")
@click.option("--torchvision", "torchvision_name", help="A torchvision model name (random weights; needs torch).")
@click.option("--timm", "timm_name", help="A timm model name (random weights; needs torch and timm).")
@click.option("--module", "module_spec", help="package.module:factory returning an nn.Module (needs torch).")
def validate(
    architecture: str | None,
    preset: str | None,
    image_size: int | tuple[int, int] | None,
    min_c_value: str | None,
    include_pointwise: bool | None,
    as_json: bool,
    plot: str | None,
    classifier_from: str | None,
    repair: bool,
    torchvision_name: str | None,
    timm_name: str | None,
    module_spec: str | None,
) -> None:
    """Check an architecture (JSON file, ONNX model, --preset, or a PyTorch model by --torchvision, --timm or
    --module) against both constraints; exit 1 on a violation."""
    try:
        torch_sources = [(s, n) for s, n in (("torchvision", torchvision_name), ("timm", timm_name),
                                             ("module", module_spec)) if n is not None]  # fmt: skip
        if (architecture is not None) + (preset is not None) + len(torch_sources) != 1:
            raise ProblemError(
                422, "Bad usage", "give exactly one of an architecture file, --preset, --torchvision, --timm or "
                "--module", field="architecture",
            )  # fmt: skip
        notes: tuple[str, ...] = ()
        params = None
        if torch_sources:
            checked, params, notes = validate_torch(*torch_sources[0], image_size, min_c_value, include_pointwise)
            report = report_dict(checked)
            if repair:
                report["repair"] = repair_dict(repair_architecture(checked), graph_format=True)
        elif architecture is not None and architecture.lower().endswith(".onnx"):
            try:
                from cnnplan.service.interop.onnx_import import validate_onnx_file  # the optional 'onnx' extra
            except ImportError:
                reason = "reading .onnx files needs the onnx package: pip install 'cnnplan[onnx]'"
                raise invalid_field("architecture", reason, code="onnx_unavailable") from None

            size = tuple(image_size) if isinstance(image_size, list) else image_size
            checked = validate_onnx_file(architecture, size, min_c_value, bool(include_pointwise), classifier_from)
            report = report_dict(checked)
            if repair:
                report["repair"] = repair_dict(repair_architecture(checked), graph_format=True)
        else:
            data: dict[str, Any] = read_architecture(architecture) if architecture is not None else {"preset": preset}
            for key, value in (
                ("image_size", image_size),
                ("min_c_value", min_c_value),
                ("include_pointwise", include_pointwise),
                ("repair", repair or None),
            ):
                if value is not None:
                    data[key] = value
            body = ValidateRequestModel.model_validate(data)
            checked = validate_body(body)
            report = validate_answer_dict(body, checked)
            params = preset_params(preset) if preset is not None else None
            notes = preset_params_notes(preset) if preset is not None else ()
        if params is not None:
            report["params"] = params
        if notes:
            report["notes"] = list(notes)
        if plot is not None:
            write_plot(checked, report_title(checked), plot)
    except (SolverError, ValidationError, ProblemError) as error:
        fail(error)
        return
    if as_json:
        echo_json(report)
    else:
        verdict = "VALID" if report["valid"] else f"INVALID ({len(report['violations'])} violations)"
        click.echo(
            f"{verdict}: depth {report['depth']}, top receptive field {axes_cell(report['top_receptive_field'])} "
            f"({report['top_layer']}, limit {axes_cell(report['receptive_field_limit'])}), "
            f"t = {report['min_c_value_exact']}, "
            f"depth headroom {report['depth_headroom']}"
        )
        for violation in report["violations"]:
            click.echo(f"  - [{violation['constraint']}] {violation['message']}")
        for note in report.get("notes", ()):
            click.echo(f"  note: {note}")
        click.echo()
        click.echo(format_table(LAYER_COLUMNS, layer_rows(report["layers"])))
        if report.get("repair"):
            echo_repair(report["repair"])
    sys.exit(EXIT_OK if report["valid"] else EXIT_VIOLATION)


def echo_repair(repaired: dict[str, Any]) -> None:
    """The repair as text: verdict, each edit, what is left, and the repaired layer table."""
    result = repaired["result"]
    verdict = "VALID" if repaired["valid"] else f"STILL INVALID ({len(result['violations'])} violations)"
    click.echo()
    count = len(repaired["edits"])
    click.echo(f"Repaired: {verdict} after {count} edit{'' if count == 1 else 's'}, depth {result['depth']}")
    for edit in repaired["edits"]:
        click.echo(f"  - {json.dumps(edit)}")
    for left in repaired["unresolved"]:
        click.echo(f"  ! [{left['constraint']}] {left['layer']}: {left['reason']}")
    click.echo()
    click.echo(format_table(LAYER_COLUMNS, layer_rows(result["layers"])))


def validate_torch(
    source: str, name: str, image_size: Any, min_c_value: str | None, include_pointwise: bool | None
) -> tuple[Any, int, tuple[str, ...]]:
    """--torchvision / --timm / --module: build the model (random weights), trace it, validate it; the image size
    defaults to the model's native one (timm's pretrained config, 299 for Inception-v3, else 224)."""
    try:
        from cnnplan.service.interop.torch_import import build_named_model, validate_module
    except ImportError:
        raise ProblemError(422, "PyTorch unavailable", "this needs torch: pip install 'cnnplan[torch]'",
                           field=f"--{source}") from None  # fmt: skip
    model = build_named_model(source, name)
    if image_size is None:
        image_size = native_image_size(model, name)
    size = tuple(image_size) if isinstance(image_size, list) else image_size
    report, traced = validate_module(model, size, min_c_value, bool(include_pointwise))
    return report, traced.params, traced.notes


def native_image_size(model: Any, name: str) -> int:
    """The resolution a model was trained at: timm's ``pretrained_cfg['input_size']``, 299 for Inception-v3."""
    config = getattr(model, "pretrained_cfg", None) or {}
    if "input_size" in config:
        return int(config["input_size"][-1])
    return 299 if "inception" in name else 224


def write_plot(report: Any, title: str, path: str, spatial_only: bool = False) -> None:
    """Write a diagram for --plot; an unwritable path is a bad-input error naming --plot."""
    from cnnplan.service.interop.diagrams import write_report_image

    try:
        write_report_image(report, title, path, spatial_only)
    except OSError as error:
        raise invalid_field("--plot", f"cannot write {path}: {error.strerror}", code="bad_file") from None


def openapi_document() -> dict[str, Any]:
    """The OpenAPI spec of an app built with default settings (what openapi/openapi.json holds)."""
    from cnnplan.service.api.app import create_app
    from cnnplan.service.settings import Settings

    return create_app(Settings()).openapi()


@main.command()
def openapi() -> None:
    """Print the OpenAPI spec (JSON); `cnnplan openapi > openapi/openapi.json` refreshes the committed copy."""
    click.echo(json.dumps(openapi_document(), indent=2))


from cnnplan.service.cli.jobs import bench, worker  # noqa: E402  benchmark job commands (docs/worker.md)

main.add_command(worker)
main.add_command(bench)

from cnnplan.service.cli.experiments import experiment  # noqa: E402  training experiments (docs/experiments.md)

main.add_command(experiment)

if __name__ == "__main__":
    main()
