#!/usr/bin/env bash
# HTTP load test of `GET /v1/ledger/accounts/{id}` with a valid bearer token, on loopback.
#
#   deploy/bench/http.sh sqlite|postgres
#
# Builds nothing: runs ${WRAPD:-target/release/wrapd} (build it first with
# `cargo build --release -p api`). For the backend given it
#   1. makes a scratch database (SQLite: a file in a temp directory; PostgreSQL: a database
#      `wrap_http_bench_<pid>_<time>` on the server of WRAP_TEST_POSTGRES_URL, dropped at exit),
#   2. generates an Ed25519 signing key (WRAP__AUTH__KEY_FILE),
#   3. runs `wrapd migrate up` and `wrapd bench fixture` (a viewer client and an account with
#      100 entries), then ANALYZE on PostgreSQL,
#   4. for each log level in ${LOG_LEVELS:-info warn}: starts `wrapd serve` on a free port,
#      waits for /readyz, gets a token from /oauth/token, checks one request answers 200,
#      warms up for ${WARMUP:-5s}, then runs
#        wrk -t${THREADS:-2} -c${CONNECTIONS:-64} -d${DURATION:-30s} --latency
#      and stops the server.
# wrk's report is printed per level; the server's log is kept in the temp directory, which is
# printed and left in place when KEEP=1 (removed otherwise).
#
# Needs: wrk, curl, openssl, python3 (or jq); psql for postgres.
# Note: wrk and wrapd share the machine's cores; on a small machine the load generator takes
# a good part of the CPU the server could otherwise use.
set -euo pipefail

backend="${1:-}"
case "$backend" in
  sqlite | postgres) ;;
  *)
    echo "usage: $0 sqlite|postgres" >&2
    exit 2
    ;;
esac

WRAPD="${WRAPD:-target/release/wrapd}"
WRAP_TEST_POSTGRES_URL="${WRAP_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
DURATION="${DURATION:-30s}"
WARMUP="${WARMUP:-5s}"
LOG_LEVELS="${LOG_LEVELS:-info warn}"

for tool in wrk curl openssl; do
  command -v "$tool" >/dev/null || {
    echo "$0: $tool is required (apt-get install -y $tool)" >&2
    exit 1
  }
done
[[ -x "$WRAPD" ]] || {
  echo "$0: $WRAPD not found: build it (cargo build --release -p api) or set WRAPD" >&2
  exit 1
}

# A JSON field of stdin: python3 if present, else jq.
json_field() {
  if command -v python3 >/dev/null; then
    python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
  else
    jq -er ".$1"
  fi
}

# A TCP port nobody listens on right now (the kernel picks it).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

work="$(mktemp -d -t wrap-http-bench.XXXXXX)"
server_pid=""
pg_db=""

cleanup() {
  local status=$?
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
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

# 1. The scratch database.
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

# 2. The token signing key (required on PostgreSQL; used on SQLite too, for the same setup).
openssl genpkey -algorithm ed25519 -out "$work/signing.pem" 2>/dev/null
export WRAP__AUTH__KEY_FILE="$work/signing.pem"
export WRAP__DATABASE__URL="$database_url"
export WRAP__DATABASE__AUTO_MIGRATE=true
export WRAP__LOG__FORMAT=json
unset RUST_LOG # it would override WRAP__LOG__LEVEL

# 3. Schema and test data.
"$WRAPD" migrate up --database-url "$database_url" 2>>"$work/setup.log"
fixture="$("$WRAPD" bench fixture --database-url "$database_url" 2>>"$work/setup.log")"
client_id="$(json_field client_id <<<"$fixture")"
client_secret="$(json_field client_secret <<<"$fixture")"
account="$(json_field account_id <<<"$fixture")"
if [[ "$backend" == postgres ]]; then
  # Autovacuum is off on the benchmark machine, so nothing would ever analyse the freshly
  # filled tables: the planner would keep believing them empty (docs/BENCHMARKS.md,
  # "Statistics"). ANALYZE gives it the statistics a production server keeps up to date.
  psql -q "$database_url" -c ANALYZE >/dev/null
fi

echo "backend=$backend account=$account wrapd=$WRAPD $("$WRAPD" --version)"
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency (warm-up $WARMUP); cores: $(nproc)"

# 4. One server per log level.
invalid=0
for level in $LOG_LEVELS; do
  port="$(free_port)"
  base="http://127.0.0.1:$port"
  log="$work/serve-$level.log"
  WRAP__LOG__LEVEL="$level" "$WRAPD" serve --bind "127.0.0.1:$port" 2>"$log" &
  server_pid=$!
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$base/readyz" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || {
      echo "$0: wrapd serve exited; its log:" >&2
      cat "$log" >&2
      exit 1
    }
    sleep 0.1
  done
  curl -fsS -o /dev/null "$base/readyz"

  token="$(curl -fsS "$base/oauth/token" \
    --data-urlencode grant_type=client_credentials \
    --data-urlencode "client_id=$client_id" \
    --data-urlencode "client_secret=$client_secret" | json_field access_token)"
  url="$base/v1/ledger/accounts/$account"
  status="$(curl -sS -o "$work/one.json" -w '%{http_code}' -H "Authorization: Bearer $token" "$url")"
  if [[ "$status" != 200 ]]; then
    echo "$0: GET $url answered $status, not 200:" >&2
    cat "$work/one.json" >&2
    exit 1
  fi

  echo
  echo "== $backend, log level $level =="
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -H "Authorization: Bearer $token" "$url" >/dev/null
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Bearer $token" "$url" |
    tee "$work/wrk-$level.txt"
  # Every answer must be a 200: wrk counts others on its own line, and a run that has any
  # (401s, 404s, 5xx) measured something else.
  if grep -q 'Non-2xx or 3xx' "$work/wrk-$level.txt"; then
    echo "INVALID: some answers were not 2xx" >&2
    invalid=1
  fi
  echo "server log: $(wc -l <"$log") lines, $(du -h "$log" | cut -f1)"

  kill "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
done
exit "$invalid"
