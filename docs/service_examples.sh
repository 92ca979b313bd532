#!/usr/bin/env bash
# Regenerates the "curl examples" section of README.md from a real run: starts `cnnplan serve`
# on 127.0.0.1:8000 (embedded worker off), runs every example, prints Markdown. Needs curl and jq.
#   bash docs/service_examples.sh > /tmp/examples.md
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=8000
DATA=$(mktemp -d)
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -rf "$DATA"' EXIT
CNNPLAN_EMBEDDED_WORKER=false CNNPLAN_DATA_DIR="$DATA/data" CNNPLAN_LOG_LEVEL=warning \
    .venv/bin/cnnplan serve --host 127.0.0.1 --port "$PORT" >"$DATA/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do curl -sf "localhost:$PORT/healthz" >/dev/null && break; sleep 0.2; done

cd "$DATA"
python3 - >arch.json <<'PY'
import json
print(json.dumps([{"type": "conv", "kernel_size": 3, "padding": "same", "out_channels": 16}] * 9))
PY
echo '{"image_size": 19, "layers": '"$(cat arch.json)"'}' >validate.json

example() {  # example "title" "command"
    local output
    output=$(bash -c "$2" 2>&1 || true)
    printf '### %s\n\n```console\n$ %s\n%s\n```\n\n' "$1" "$2" "$output"
}

example "Liveness" "curl -s localhost:$PORT/healthz"
example "Readiness (components)" "curl -s localhost:$PORT/readyz | jq -c ."
example "Plan from a query string (summary fields)" \
    "curl -s 'localhost:$PORT/plan?image_size=36' | jq -c '{depth, stages, top_receptive_field, depth_headroom, relaxed, params, flops}'"
example "Plan from a JSON body (summary and echoed inputs)" \
    "curl -s localhost:$PORT/plan -H 'Content-Type: application/json' -d '{\"image_size\": 224, \"kernel_size\": 3, \"min_c_value\": \"1/6\", \"downsample\": \"maxpool\"}' | jq -c '{depth, stages, top_receptive_field, relaxed, inputs}'"
example "Plan: the per-layer statistics (first and last layers of a 18x18 plan)" \
    "curl -s localhost:$PORT/plan -H 'Content-Type: application/json' -d '{\"image_size\": 18}' | jq -c '.layers[0,3,21,23,24,-1]'"
example "Validate a layer list (the 9th 3x3 convolution breaks c >= 1/6)" \
    "curl -s localhost:$PORT/validate -H 'Content-Type: application/json' -d @validate.json | jq 'del(.layers)'"
example "Validate a preset (summary)" \
    "curl -s localhost:$PORT/validate -H 'Content-Type: application/json' -d '{\"preset\": \"vgg16\", \"image_size\": 224}' | jq -c '{valid, violations, top_layer, top_receptive_field, depth, depth_headroom, params, flops}'"
example "Validate a graph (a residual add)" \
    "curl -s localhost:$PORT/validate -H 'Content-Type: application/json' -d '{\"image_size\": 32, \"graph\": {\"nodes\": [{\"name\": \"a\", \"type\": \"conv\", \"kernel_size\": 3, \"padding\": \"same\", \"inputs\": [\"input\"]}, {\"name\": \"b\", \"type\": \"conv\", \"kernel_size\": 3, \"padding\": \"same\", \"inputs\": [\"a\"]}, {\"name\": \"sum\", \"type\": \"add\", \"inputs\": [\"a\", \"b\"]}]}}' | jq -c '.layers[] | {name, receptive_field, effective_padding, c_value_exact}'"
example "Batch of plans: one bad item does not sink the batch" \
    "curl -s localhost:$PORT/plan/batch -H 'Content-Type: application/json' -d '{\"requests\": [{\"image_size\": 18}, {\"image_size\": 36, \"kernel_size\": 4}, {\"image_size\": 0}]}' | jq -c '.results[] | {index, ok, stages: .result.stages, problem: (.problem // null | if . then {field, reason} else null end)}'"
example "Batch of validations" \
    "curl -s localhost:$PORT/validate/batch -H 'Content-Type: application/json' -d '{\"requests\": [{\"preset\": \"vgg16\"}, {\"preset\": \"vgg17\"}]}' | jq -c '.results[] | {index, ok, valid: .result.valid, problem: (.problem.detail // null)}'"
example "Presets" "curl -s localhost:$PORT/presets | jq -c '.presets[] | {name, default_image_size}'"
example "One preset (its nodes feed POST /validate as graph.nodes)" \
    "curl -s localhost:$PORT/presets/resnet18 | jq -c '{name, title, nodes: (.nodes | length), first: .nodes[0]}'"
example "Error: image side above 2^20 (422)" \
    "curl -s -i localhost:$PORT/plan -H 'Content-Type: application/json' -d '{\"image_size\": 2000000}' | tr -d '\r' | grep -v -i -E '^(date|server|content-length):'"
example "Error: malformed layer (422 naming the field)" \
    "curl -s localhost:$PORT/validate -H 'Content-Type: application/json' -d '{\"image_size\": 32, \"layers\": [{\"type\": \"conv\", \"kernel_size\": 3}, {\"type\": \"conv\", \"kernal_size\": 3}]}' | jq -c ."
example "Error: unknown preset (404 as a resource; 422 inside a /validate body)" "curl -s localhost:$PORT/presets/vgg17 | jq -c ."
example "Error: body over 1 MiB (413)" \
    "python3 -c 'print(\" \" * 1100000)' | curl -s localhost:$PORT/plan -H 'Content-Type: application/json' --data-binary @- | jq -c ."
example "Error: unknown route (404) and wrong method (405)" \
    "curl -s localhost:$PORT/plans | jq -c . && curl -s -X DELETE localhost:$PORT/plan | jq -c ."
example "Metrics (Prometheus text; the POST /plan series)" \
    "curl -s localhost:$PORT/metrics | grep -E 'route=\"/plan\"' | grep -E 'POST' | grep -v -E '_created|le=\"0\\.(000|00)'"
