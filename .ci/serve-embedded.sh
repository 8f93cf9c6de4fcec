# Sourced by the CI scripts that need a real `wrapd serve` (.ci/fuzz-api.sh, .ci/sdk.sh):
# builds the debug binary, bootstraps a scratch SQLite database and serves it on a free
# loopback port until the sourcing script exits. Sets `wrapd`, `dir` (scratch directory, with
# boot.json: the platform admin's credentials, and serve.log), `base` (the server's URL) and
# `server` (its pid).
# shellcheck shell=bash
cargo build --quiet -p api --bin wrapd
wrapd="$PWD/target/debug/wrapd"
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
