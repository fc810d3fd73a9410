#!/usr/bin/env bash
# make run: one gateway node with embedded defaults (Pebble under ./data) and
# the mock upstream beside it; a demo platform whose providers point at the
# mock is created on first start, and its keys are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
export ASSISTIV_LISTEN="${ASSISTIV_LISTEN:-127.0.0.1:8080}"
export ASSISTIV_DATA_DIR="${ASSISTIV_DATA_DIR:-./data}"
export ASSISTIV_ALLOW_PRIVATE_EGRESS="${ASSISTIV_ALLOW_PRIVATE_EGRESS:-true}"
MOCK_LISTEN="${MOCK_LISTEN:-127.0.0.1:9090}"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
bin/mockllm -listen "$MOCK_LISTEN" &
pids+=($!)
echo "mock upstream on http://$MOCK_LISTEN"
bin/gateway serve -demo-upstream "http://$MOCK_LISTEN" &
pids+=($!)
wait -n "${pids[@]}"
