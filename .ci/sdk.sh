#!/usr/bin/env bash
# The client SDKs, generated and used: sdk/generate.sh writes the OpenAPI document and the
# Python and TypeScript clients, then the marketplace tour runs with each (sdk/python/tour.py,
# sdk/typescript/tour.ts) against a real `wrapd serve` on a free port with an embedded SQLite
# database. Installs what it needs when missing (the generators are pinned in sdk/generate.sh
# and sdk/typescript/package-lock.json; node 20.19 or later from Debian's packages).
# Usage: .ci/sdk.sh
set -euo pipefail
cd "$(dirname "$0")/.."

node_ok() {
    command -v node >/dev/null && command -v npm >/dev/null &&
        node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'
}
if ! node_ok; then
    apt-get install -y nodejs npm >/dev/null || { apt-get update >/dev/null && apt-get install -y nodejs npm >/dev/null; }
    node_ok || { echo "sdk: node 20.19 or later is needed (found $(node --version 2>/dev/null || echo none))" >&2; exit 1; }
fi
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    apt-get install -y python3-venv >/dev/null || { apt-get update >/dev/null && apt-get install -y python3-venv >/dev/null; }
fi
for tool in curl jq; do
    if ! command -v "$tool" >/dev/null; then
        apt-get install -y "$tool" >/dev/null || { apt-get update >/dev/null && apt-get install -y "$tool" >/dev/null; }
    fi
done
echo "sdk: python $(python3 --version | cut -d' ' -f2), node $(node --version), npm $(npm --version)"

cargo build --quiet -p api --bin wrapd
wrapd="$PWD/target/debug/wrapd"
sdk/generate.sh "$wrapd"

dir="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
db="sqlite://$dir/wrap.db?mode=rwc"
cleanup() {
    [ -n "${server:-}" ] && kill "$server" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
export WRAP__LOG__LEVEL=warn
"$wrapd" bootstrap --database-url "$db" --json > "$dir/boot.json"
"$wrapd" serve --database-url "$db" --bind "127.0.0.1:$port" 2> "$dir/serve.log" &
server=$!
for _ in $(seq 1 50); do
    curl -sf "$base/healthz" >/dev/null && break
    sleep 0.2
done
client_id="$(jq -r .client_id "$dir/boot.json")"
client_secret="$(jq -r .client_secret "$dir/boot.json")"

status=0
echo "--- sdk/python/tour.py"
BASE="$base" sdk/.venv/bin/python sdk/python/tour.py "$client_id" "$client_secret" || status=1
echo "--- sdk/typescript/tour.ts"
(cd sdk/typescript && BASE="$base" npx tsx tour.ts "$client_id" "$client_secret") || status=1
if [ "$status" != 0 ]; then
    echo "sdk: a tour failed; the server's log:" >&2
    tail -n 20 "$dir/serve.log" >&2
    exit 1
fi
echo "sdk: both tours passed"
