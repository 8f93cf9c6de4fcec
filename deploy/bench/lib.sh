# shellcheck shell=bash disable=SC2154 # $backend, WRAPD and WRAP_TEST_POSTGRES_URL come from the sourcing script
# Shared by the HTTP load tests (deploy/bench/http.sh, deploy/bench/mixed.sh): a scratch
# database, a signing key, one `wrapd serve` on a free port, tokens. Sourced, not run.
# Expects: $backend (sqlite|postgres), WRAPD, WRAP_TEST_POSTGRES_URL; sets $work, $database_url.

for tool in wrk curl openssl python3; do
  command -v "$tool" >/dev/null || {
    echo "$0: $tool is required (apt-get install -y $tool)" >&2
    exit 1
  }
done
[[ -x "$WRAPD" ]] || {
  echo "$0: $WRAPD not found: build it (cargo build --release -p api) or set WRAPD" >&2
  exit 1
}

# A JSON field of stdin.
json_field() {
  python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# A TCP port nobody listens on right now (the kernel picks it).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

work="$(mktemp -d -t wrap-http-bench.XXXXXX)"
server_pid=""
pg_db=""

# Stops the server gracefully (SIGTERM: requests in flight are answered first).
stop_server() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}

cleanup() {
  local status=$?
  stop_server
  if [[ $status != 0 && -s "$work/setup.log" ]]; then
    echo "$0: setup log (last lines):" >&2
    tail -5 "$work/setup.log" >&2
  fi
  if [[ -n "$pg_db" ]]; then
    psql -q "$WRAP_TEST_POSTGRES_URL" -c "DROP DATABASE IF EXISTS \"$pg_db\" WITH (FORCE)" >/dev/null ||
      echo "$0: could not drop database $pg_db" >&2
  fi
  if [[ "${KEEP:-0}" == 1 ]]; then
    echo "kept: $work" >&2
  else
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM # exit through the EXIT trap, once

# The scratch database.
if [[ "$backend" == sqlite ]]; then
  database_url="sqlite://$work/wrap.db?mode=rwc"
else
  pg_db="wrap_http_bench_$$_$(date +%s)"
  psql -q "$WRAP_TEST_POSTGRES_URL" -c "CREATE DATABASE \"$pg_db\"" >/dev/null
  # Same server, user and options as WRAP_TEST_POSTGRES_URL, our database instead.
  database_url="$(python3 -c '
import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1])
print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$WRAP_TEST_POSTGRES_URL" "$pg_db")"
fi

# The token signing key (required on PostgreSQL; used on SQLite too, for the same setup).
openssl genpkey -algorithm ed25519 -out "$work/signing.pem" 2>/dev/null
export WRAP__AUTH__KEY_FILE="$work/signing.pem"
export WRAP__DATABASE__URL="$database_url"
export WRAP__DATABASE__AUTO_MIGRATE=true
export WRAP__LOG__FORMAT=json
unset RUST_LOG # it would override WRAP__LOG__LEVEL
"$WRAPD" migrate up --database-url "$database_url" >>"$work/setup.log" 2>&1

# After the fixture: autovacuum is off on the benchmark machine, so nothing would ever
# analyse the freshly filled tables and the planner would keep believing them empty
# (docs/BENCHMARKS.md, "Statistics"). ANALYZE gives it what a production server keeps.
analyze() {
  if [[ "$backend" == postgres ]]; then
    psql -q "$database_url" -c ANALYZE >/dev/null
  fi
}

# `wrapd serve` at log level $1 on a free port, ready: sets $base and $server_pid.
start_server() {
  local level="$1" port
  port="$(free_port)"
  base="http://127.0.0.1:$port"
  server_log="$work/serve-$level.log"
  WRAP__LOG__LEVEL="$level" "$WRAPD" serve --bind "127.0.0.1:$port" 2>"$server_log" &
  server_pid=$!
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$base/readyz" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || {
      echo "$0: wrapd serve exited; its log:" >&2
      cat "$server_log" >&2
      exit 1
    }
    sleep 0.1
  done
  curl -fsS -o /dev/null "$base/readyz"
}

# A bearer token for client $1 with secret $2.
token_for() {
  curl -fsS "$base/oauth/token" \
    --data-urlencode grant_type=client_credentials \
    --data-urlencode "client_id=$1" \
    --data-urlencode "client_secret=$2" | json_field access_token
}
