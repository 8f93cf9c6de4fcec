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
# Needs: wrk, curl, openssl, python3; psql for postgres.
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

# shellcheck source=deploy/bench/lib.sh
. "$(dirname "$0")/lib.sh" # 1-2: scratch database, signing key, schema

# 3. Test data.
fixture="$("$WRAPD" bench fixture --database-url "$database_url" 2>>"$work/setup.log")"
client_id="$(json_field client_id <<<"$fixture")"
client_secret="$(json_field client_secret <<<"$fixture")"
account="$(json_field account_id <<<"$fixture")"
analyze

echo "backend=$backend account=$account wrapd=$WRAPD $("$WRAPD" --version)"
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency (warm-up $WARMUP); cores: $(nproc)"

# 4. One server per log level.
invalid=0
for level in $LOG_LEVELS; do
  start_server "$level"
  log="$server_log"
  token="$(token_for "$client_id" "$client_secret")"
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

  stop_server
done
exit "$invalid"
