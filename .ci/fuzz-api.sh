#!/usr/bin/env bash
# Schema-driven fuzzing of the API (schemathesis, bounded): a real `wrapd serve` on an
# embedded database, tried with a token of each tenant kind (platform, distributor, manager).
# Fails on any 5xx, any status, content type or body the OpenAPI document does not allow.
# Usage: .ci/fuzz-api.sh [EXAMPLES_PER_OPERATION]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
examples="${1:-10}"
if ! command -v st >/dev/null || ! st --version 2>/dev/null | grep -q "4\.32\.5"; then
    python3 -m pip install --quiet "schemathesis==4.32.5"
fi
# shellcheck source=.ci/serve-embedded.sh
source .ci/serve-embedded.sh
token() {
    curl -sf "$base/oauth/token" -d grant_type=client_credentials \
        --data-urlencode "client_id=$1" --data-urlencode "client_secret=$2" | jq -r .access_token
}
platform="$(token "$(jq -r .client_id "$dir/boot.json")" "$(jq -r .client_secret "$dir/boot.json")")"
# A tenant of `kind` with an admin client: prints the admin's token.
tenant_token() {
    local id creds
    id="$(curl -sf "$base/v1/tenants" -H "authorization: Bearer $platform" \
        -H 'content-type: application/json' \
        -d "{\"kind\":\"$1\",\"name\":\"Fuzz $1\",\"contact_email\":\"ops@example.jp\"}" | jq -r .id)"
    creds="$(curl -sf "$base/v1/tenants/$id/clients" -H "authorization: Bearer $platform" \
        -H 'content-type: application/json' -d '{"name":"admin","role":"admin"}')"
    token "$(jq -r .client_id <<<"$creds")" "$(jq -r .client_secret <<<"$creds")"
}
distributor="$(tenant_token distributor)"
manager="$(tenant_token manager)"
status=0
for who in platform distributor manager; do
    echo "fuzz-api: $examples examples per operation as the $who"
    st run "$base/v1/openapi.json" -H "Authorization: Bearer ${!who}" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
        --max-examples "$examples" --phases fuzzing --workers 1 --request-timeout 20 \
        --exclude-path-regex '^/oauth/token$' --seed 20261207 --no-color \
        > "$dir/st-$who.log" 2>&1 || status=1
    tail -n 4 "$dir/st-$who.log"
    if [ "$status" != 0 ]; then
        grep -E '^_+ |^- ST|^[0-9]+\. ' "$dir/st-$who.log" | head -40 >&2 || true
        break
    fi
done
exit "$status"
