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

# shellcheck source=.ci/serve-embedded.sh
source .ci/serve-embedded.sh
sdk/generate.sh "$wrapd"
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
