#!/usr/bin/env bash
# The console in a real browser: Debian's chromium (installed here when missing; never a
# downloaded browser) driven by playwright-core (pinned in .ci/browser/package-lock.json)
# against a real `wrapd serve` (.ci/serve-embedded.sh), with an operator user made through
# POST /v1/users, and a distributor's branch adviser with a customer of the branch and one
# of no branch. SCREENSHOTS=DIR keeps a PNG of each screen.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
    apt-get install -y chromium >/dev/null || { apt-get update >/dev/null && apt-get install -y chromium >/dev/null; }
fi
if [ ! -d .ci/browser/node_modules/playwright-core ]; then
    (cd .ci/browser && npm ci --no-audit --no-fund >/dev/null)
fi

# shellcheck source=.ci/serve-embedded.sh
source .ci/serve-embedded.sh

client_id="$(jq -r .client_id "$dir/boot.json")"
client_secret="$(jq -r .client_secret "$dir/boot.json")"
token="$(curl -sf "$base/oauth/token" -d grant_type=client_credentials \
    --data-urlencode "client_id=$client_id" --data-urlencode "client_secret=$client_secret" | jq -r .access_token)"
password="browser-test-$(tr -d '-' </proc/sys/kernel/random/uuid)"
curl -sf "$base/v1/users" -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d "{\"name\":\"運用 太郎\",\"email\":\"ops@wrap.example\",\"role\":\"operator\",\"access\":\"write\",\"password\":\"$password\"}" >/dev/null
tenant="$(curl -sf "$base/v1/tenants" -H "authorization: Bearer $token" | jq -r '.items[] | select(.kind == "platform") | .name')"

# A distributor with a branch, its adviser, a customer of the branch and one of no branch.
api() { curl -sf "$base$2" -H "authorization: Bearer $1" -H 'content-type: application/json' "${@:3}"; }
bank="$(api "$token" /v1/tenants -d '{"kind":"distributor","name":"browser-bank","contact_email":"ops@bank.example"}' | jq -r .id)"
bank_client="$(api "$token" "/v1/tenants/$bank/clients" -d '{"name":"browser admin","role":"admin"}')"
bank_token="$(curl -sf "$base/oauth/token" -d grant_type=client_credentials \
    --data-urlencode "client_id=$(jq -r .client_id <<<"$bank_client")" \
    --data-urlencode "client_secret=$(jq -r .client_secret <<<"$bank_client")" | jq -r .access_token)"
branch="$(api "$bank_token" /v1/branches -d '{"code":"001","name":"本店営業部"}' | jq -r .id)"
adviser="$(api "$bank_token" /v1/users -d "{\"name\":\"支店 花子\",\"email\":\"adviser@bank.example\",\"role\":\"adviser\",\"access\":\"write\",\"branch_id\":\"$branch\",\"password\":\"$password\"}" | jq -r .id)"
mine="$(api "$bank_token" /v1/customers -d '{"external_ref":"B-001","name":"山田 太郎","risk_tolerance":3}' | jq -r .id)"
api "$bank_token" /v1/customers -d '{"external_ref":"B-002","name":"佐藤 次郎","risk_tolerance":3}' >/dev/null
api "$bank_token" "/v1/customers/$mine/assignment" -X PUT -d "{\"branch_id\":\"$branch\",\"adviser_id\":\"$adviser\"}" >/dev/null

BASE="$base" TENANT="$tenant" EMAIL="ops@wrap.example" PASSWORD="$password" \
    BANK="browser-bank" ADVISER_EMAIL="adviser@bank.example" \
    node --test --test-reporter=spec .ci/browser/console.test.mjs
