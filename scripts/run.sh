#!/usr/bin/env bash
# make run: one gateway node with embedded defaults (Pebble under ./data).
# When bin/mockllm exists it starts beside the gateway as a local upstream.
set -euo pipefail
cd "$(dirname "$0")/.."
export ASSISTIV_LISTEN="${ASSISTIV_LISTEN:-127.0.0.1:8080}"
export ASSISTIV_DATA_DIR="${ASSISTIV_DATA_DIR:-./data}"
export ASSISTIV_ALLOW_PRIVATE_EGRESS="${ASSISTIV_ALLOW_PRIVATE_EGRESS:-true}"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
if [ -x bin/mockllm ]; then
  bin/mockllm -listen 127.0.0.1:9090 &
  pids+=($!)
  echo "mock upstream on http://127.0.0.1:9090"
fi
bin/gateway serve &
pids+=($!)
wait -n "${pids[@]}"
