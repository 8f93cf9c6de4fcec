#!/usr/bin/env bash
# Mixed HTTP load test on loopback: reads and money movements at the same time, at fixed
# rates, then the exactly-once check of every acknowledged movement.
#
#   deploy/bench/mixed.sh sqlite|postgres
#
# Builds nothing: runs ${WRAPD:-target/release/wrapd} (`cargo build --release -p api`).
#   1. a scratch database and signing key (deploy/bench/lib.sh), then
#      `wrapd bench fixture --customers $CUSTOMERS --distributors $DISTRIBUTORS`: operator
#      clients and customers, each with ¥10,000,000 of cash;
#   2. `wrapd serve` at log level $LOG_LEVEL (default info, as shipped), one token per
#      distributor;
#   3. two wrk processes at once for $DURATION (after $WARMUP of the same mix, not counted):
#        reads:     GET /v1/ledger/accounts/{a customer's cash account}, aiming at $READ_RATE/s
#                   over $READ_CONNECTIONS connections;
#        movements: POST /v1/customers/{id}/deposits (2 in 3) and /withdrawals (1 in 3), each
#                   with its own Idempotency-Key, aiming at $MOVE_RATE/s over
#                   $MOVE_CONNECTIONS connections;
#      random customers; the Lua script (deploy/bench/mixed.lua) paces each process and records
#      the entry id of every 201;
#   4. the server stopped gracefully, then deploy/bench/exactly_once.py (every acknowledged
#      movement booked once, nothing else booked) and `wrapd verify` (hash chains, trial
#      balance, reconciliation).
# Prints one JSON line per kind (throughput, p50/p90/p99/p99.9/max, errors) and the checks;
# exits non-zero if a check fails or any answer was not 200/201.
# Defaults: 70 % reads: READ_RATE=4667 MOVE_RATE=2000 (0 = as fast as it can).
# Needs: wrk (with LuaJIT, as Debian's), curl, openssl, python3; psql for postgres.
set -euo pipefail

backend="${1:-}"
case "$backend" in
  sqlite | postgres) ;;
  *)
    echo "usage: $0 sqlite|postgres" >&2
    exit 2
    ;;
esac

here="$(cd "$(dirname "$0")" && pwd)"
WRAPD="${WRAPD:-target/release/wrapd}"
WRAP_TEST_POSTGRES_URL="${WRAP_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
CUSTOMERS="${CUSTOMERS:-1000}"
DISTRIBUTORS="${DISTRIBUTORS:-1}"
READ_RATE="${READ_RATE:-4667}"
MOVE_RATE="${MOVE_RATE:-2000}"
READ_CONNECTIONS="${READ_CONNECTIONS:-16}"
MOVE_CONNECTIONS="${MOVE_CONNECTIONS:-32}"
DURATION="${DURATION:-30s}"
WARMUP="${WARMUP:-5s}"
LOG_LEVEL="${LOG_LEVEL:-info}"

# shellcheck source=deploy/bench/lib.sh
. "$here/lib.sh"

# 1. Test data.
"$WRAPD" bench fixture --database-url "$database_url" \
  --customers "$CUSTOMERS" --distributors "$DISTRIBUTORS" >"$work/fixture.json" 2>>"$work/setup.log"
analyze

# 2. The server and a token per distributor; the Lua script's customer list.
start_server "$LOG_LEVEL"
python3 - "$work/fixture.json" "$base" >"$work/customers.txt" <<'PY'
import json, sys, urllib.parse, urllib.request
fixture, base = json.load(open(sys.argv[1])), sys.argv[2]
for d in fixture["distributors"]:
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": d["client_id"],
                                   "client_secret": d["client_secret"]}).encode()
    token = json.load(urllib.request.urlopen(base + "/oauth/token", form))["access_token"]
    for c in d["customers"]:
        print(token, c["customer_id"], c["account_id"])
PY

echo "backend=$backend wrapd=$WRAPD $("$WRAPD" --version) cores=$(nproc) log=$LOG_LEVEL"
echo "customers=$CUSTOMERS x $DISTRIBUTORS distributors; reads $READ_RATE/s over $READ_CONNECTIONS connections, movements $MOVE_RATE/s over $MOVE_CONNECTIONS; $DURATION after $WARMUP"

# 3. Both kinds at once. $1: warmup|run.
run_mix() {
  local phase="$1" duration="$2"
  mkdir -p "$work/$phase"
  MIX_FILE="$work/customers.txt" MIX_KIND=reads MIX_RATE="$READ_RATE" MIX_THREADS=1 \
    MIX_REPORT="$work/$phase/reads.json" \
    wrk -t1 -c"$READ_CONNECTIONS" -d"$duration" -s "$here/mixed.lua" "$base" >"$work/$phase/reads.txt" &
  local reads=$!
  MIX_FILE="$work/customers.txt" MIX_KIND=moves MIX_RATE="$MOVE_RATE" MIX_THREADS=1 \
    MIX_OUT="$work/$phase" MIX_RUN="$phase" MIX_REPORT="$work/$phase/moves.json" \
    wrk -t1 -c"$MOVE_CONNECTIONS" -d"$duration" -s "$here/mixed.lua" "$base" >"$work/$phase/moves.txt"
  wait "$reads"
}
run_mix warmup "$WARMUP"
run_mix run "$DURATION"
cat "$work/run/reads.json" "$work/run/moves.json"
grep -h '  not ok:' "$work/run/reads.txt" "$work/run/moves.txt" || true

# 4. Checks, with the server stopped (requests in flight answered first).
stop_server
failed=0
python3 - "$work/run/reads.json" "$work/run/moves.json" "$work/warmup/reads.json" "$work/warmup/moves.json" <<'PY' || failed=1
import json, sys
bad = [(f, r["not_ok"], r["socket_errors"]) for f in sys.argv[1:] for r in [json.load(open(f))]
       if r["not_ok"] or r["socket_errors"]]
for f, n, s in bad:
    print(f"INVALID: {f}: {n} answers not 200/201, {s} socket errors", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
opening=$((CUSTOMERS * DISTRIBUTORS))
python3 "$here/exactly_once.py" "$database_url" "$opening" "$work"/warmup/acks-*.txt "$work"/run/acks-*.txt || failed=1
if "$WRAPD" verify --database-url "$database_url" >"$work/verify.txt" 2>&1; then
  echo "wrapd verify: ok"
else
  echo "wrapd verify failed:" >&2
  cat "$work/verify.txt" >&2
  failed=1
fi
echo "server log: $(wc -l <"$server_log") lines"
exit "$failed"
