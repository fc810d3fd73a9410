#!/usr/bin/env bash
# make run-cluster: three gateway nodes on 127.0.0.1 (HTTP 8080-8082, gossip
# 7946-7948, cluster remote 7101-7103), each with its own data dir under
# ./data-cluster/, sharing one cluster key, admin key, master key and
# Postgres; the mock upstream beside them. Node 3 (started last) creates the
# demo platform (providers → the mock) and prints its keys; the script then
# prints which node owns the demo end-user. Any node serves any request.
#
# Postgres is required in cluster mode: ASSISTIV_POSTGRES_URL (default: the
# local test database). The keys below are for this demo only; generate
# your own (`head -c32 /dev/urandom | base64`) for anything else.
set -euo pipefail
cd "$(dirname "$0")/.."
export ASSISTIV_POSTGRES_URL="${ASSISTIV_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
export ASSISTIV_CLUSTER_KEY="${ASSISTIV_CLUSTER_KEY:-ZGVtby1jbHVzdGVyLWtleS0zMi1ieXRlcy1sb25nISE=}"
export ASSISTIV_MASTER_KEY="${ASSISTIV_MASTER_KEY:-ZGVtby1tYXN0ZXIta2V5LTMyLWJ5dGVzLWxvbmchISE=}"
export ASSISTIV_ADMIN_KEY="${ASSISTIV_ADMIN_KEY:-demo-cluster-admin-key}"
export ASSISTIV_ALLOW_PRIVATE_EGRESS="${ASSISTIV_ALLOW_PRIVATE_EGRESS:-true}"
MOCK_LISTEN="${MOCK_LISTEN:-127.0.0.1:9090}"
DATA="${ASSISTIV_CLUSTER_DATA:-./data-cluster}"
mkdir -p "$DATA"
pids=()
cleanup() {
	# SIGTERM: each node drains its edge, hands its actors over and leaves.
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM
bin/mockllm -listen "$MOCK_LISTEN" &
pids+=($!)
echo "mock upstream on http://$MOCK_LISTEN"

node() { # node <n> [demo]: starts node n (1..3)
	local n=$1 demo=${2:-}
	local http=$((8079 + n)) gossip=$((7945 + n)) remote=$((7100 + n))
	local join=""
	[ "$n" -gt 1 ] && join="127.0.0.1:7946"
	(
		export ASSISTIV_NODE_NAME="node$n"
		export ASSISTIV_LISTEN="127.0.0.1:$http"
		export ASSISTIV_PUBLIC_URL="http://127.0.0.1:$http"
		export ASSISTIV_DATA_DIR="$DATA/node$n"
		export ASSISTIV_CLUSTER_BIND="127.0.0.1:$gossip"
		export ASSISTIV_CLUSTER_REMOTE="127.0.0.1:$remote"
		export ASSISTIV_CLUSTER_JOIN="$join"
		if [ -n "$demo" ]; then
			exec bin/gateway serve -demo-upstream "http://$MOCK_LISTEN" 2> >(tee "$DATA/node$n.stderr" >&2)
		fi
		exec bin/gateway serve
	) &
	pids+=($!)
	echo "node$n: http://127.0.0.1:$http  gossip 127.0.0.1:$gossip  remote 127.0.0.1:$remote"
}

node 1
sleep 2
node 2
sleep 1
# Node 3 joins last and sets the demo up once it sees all three members.
node 3 demo
for _ in $(seq 1 150); do
	grep -q "Demo platform ready" "$DATA/node3.stderr" 2>/dev/null && break
	sleep 0.2
done
owner=$(sed -n 's/.*DEMO_END_USER_OWNER \([0-9.:]*\).*/\1/p' "$DATA/node3.stderr" | tail -1)
case "$owner" in
127.0.0.1:7101) echo "  The demo end-user is owned by node1 (http://127.0.0.1:8080)" ;;
127.0.0.1:7102) echo "  The demo end-user is owned by node2 (http://127.0.0.1:8081)" ;;
127.0.0.1:7103) echo "  The demo end-user is owned by node3 (http://127.0.0.1:8082)" ;;
*) echo "  The demo end-user's owner: ${owner:-unknown (see $DATA/node3.stderr)}" ;;
esac
echo "  Send the curl above to any of 8080, 8081, 8082: the edge of any node forwards to the owner."
wait -n "${pids[@]}"
