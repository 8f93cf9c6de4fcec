#!/usr/bin/env bash
# The rules that let the platform shard by tenant on Citus (deploy/SCALING.md), checked on plain
# PostgreSQL so that CI needs no cluster:
#  1. schema: a fresh database migrated by `wrapd migrate up`, then .ci/citus-rules.sql on its
#     catalog (keys and foreign keys of tenant tables carry tenant_id; the tables that are not
#     distributed by tenant are exactly those declared in migrations/citus/tables.txt);
#  2. sources: every row lock (`FOR UPDATE`, `sql::for_update(..)`) in the Rust sources names one
#     tenant: `tenant_id = ` within the statement built just above it (a grep-level check: the
#     8 lines before the lock), or an entry of .ci/citus-for-update-allow.txt saying why not.
#
# Usage: .ci/citus-rules.sh WRAPD POSTGRES_URL   (the URL of a server where it may create and
# drop a scratch database). Exits non-zero on any violation.
set -euo pipefail
cd "$(dirname "$0")/.."

wrapd="$1"
pg_url="$2"
fail=0

echo "--- schema rules (fresh database, wrapd migrate up)"
db="wrap_citus_rules_$(tr -d '-' </proc/sys/kernel/random/uuid)"
base="${pg_url%%\?*}"
query="${pg_url#"$base"}"
db_url="${base%/*}/$db$query"
psql "$pg_url" -qc "CREATE DATABASE \"$db\""
trap 'psql "$pg_url" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null || true' EXIT
RUST_LOG=warn "$wrapd" migrate up --database-url "$db_url" >/dev/null
declared="$(sed -e 's/#.*//' -e 's/[[:space:]]\+/ /g' -e 's/^ //' -e 's/ $//' migrations/citus/tables.txt | grep -v '^$')"
if ! psql "$db_url" -X -q -v declared="$declared" -f .ci/citus-rules.sql; then
    fail=1
fi

echo "--- row locks name one tenant"
allow=.ci/citus-for-update-allow.txt
while IFS=: read -r file line _; do
    text="$(sed -n "${line}p" "$file")"
    trimmed="${text#"${text%%[![:space:]]*}"}"
    # Comments and doc comments describe locks; they take none.
    if grep -qE '^[[:space:]]*//' <<<"$text"; then continue; fi
    from=$((line > 8 ? line - 8 : 1))
    if sed -n "${from},${line}p" "$file" | grep -qE 'tenant_id = '; then continue; fi
    if grep -v '^#' "$allow" | grep -qF "$file: $trimmed"; then continue; fi
    echo "$file:$line: a row lock that names no tenant: $trimmed"
    fail=1
done < <(grep -rnE '(FOR UPDATE|[^_[:alnum:]]for_update\()' --include='*.rs' \
            ledger/src ledger/wraps/src tenants/src api/src)

if [ "$fail" -ne 0 ]; then
    echo "citus rules: FAILED (see above; deploy/SCALING.md says why each rule exists)" >&2
    exit 1
fi
echo "citus rules: all hold"
