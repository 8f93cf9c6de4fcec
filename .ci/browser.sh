#!/usr/bin/env bash
# The console in a real browser: Debian's chromium (installed here when missing; never a
# downloaded browser) driven by playwright-core (pinned in .ci/browser/package-lock.json)
# against a real `wrapd serve` (.ci/serve-embedded.sh), with an operator user made through
# POST /v1/users. SCREENSHOTS=DIR keeps a PNG of each screen.
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

BASE="$base" TENANT="$tenant" EMAIL="ops@wrap.example" PASSWORD="$password" \
    node --test --test-reporter=spec .ci/browser/console.test.mjs
