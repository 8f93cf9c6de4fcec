#!/usr/bin/env bash
# The marketplace tour, against a running wrapd: the platform registers an instrument and its
# price, a manager publishes a strategy, a distributor signs an agreement with it, opens a
# customer with a wrap, and moves money; then the books are checked. Every request and its
# answer are printed (README.md shows a run).
#
# Usage: deploy/tour/marketplace.sh CLIENT_ID CLIENT_SECRET   (the platform admin's, from
#        `wrapd bootstrap`), with BASE (default http://127.0.0.1:8080). Needs curl and jq.
set -euo pipefail

BASE=${BASE:-http://127.0.0.1:8080}
PLATFORM_ID=${1:?usage: $0 CLIENT_ID CLIENT_SECRET}
PLATFORM_SECRET=${2:?usage: $0 CLIENT_ID CLIENT_SECRET}
RUN=$(date +%s)

token() {
  curl -sf "$BASE/oauth/token" -d grant_type=client_credentials \
    --data-urlencode "client_id=$1" --data-urlencode "client_secret=$2" | jq -r .access_token
}

# call TOKEN METHOD PATH [BODY] [IDEMPOTENCY-KEY]: prints the request and the answer, returns
# the answer on fd 3 for jq.
call() {
  local token=$1 method=$2 path=$3 body=${4:-} key=${5:-}
  local args=(-s -X "$method" "$BASE$path" -H "authorization: Bearer $token")
  [[ -n $body ]] && args+=(-H 'content-type: application/json' -d "$body")
  [[ -n $key ]] && args+=(-H "idempotency-key: $key")
  echo "\$ $method $path ${body:+$body}${key:+  (Idempotency-Key: $key)}" >&2
  local out
  out=$(curl "${args[@]}" -w '\n%{http_code}')
  local status=${out##*$'\n'}
  out=${out%$'\n'*}
  echo "$status $(jq -c . <<<"$out")" >&2
  echo >&2
  printf '%s' "$out"
}

root=$(token "$PLATFORM_ID" "$PLATFORM_SECRET")

# Tenants: a manager and a distributor, each with an admin client.
tenant() {
  local kind=$1 name=$2 id creds
  id=$(call "$root" POST /v1/tenants "{\"kind\":\"$kind\",\"name\":\"$name $RUN\",\"contact_email\":\"ops@example.jp\"}" | jq -r .id)
  creds=$(call "$root" POST "/v1/tenants/$id/clients" '{"name":"admin","role":"admin"}')
  echo "$id $(jq -r .client_id <<<"$creds") $(jq -r .client_secret <<<"$creds")"
}
read -r manager_id manager_client manager_secret < <(tenant manager "Sakura Asset Management")
read -r bank_id bank_client bank_secret < <(tenant distributor "Minato Regional Bank")
manager=$(token "$manager_client" "$manager_secret")
bank=$(token "$bank_client" "$bank_secret")

# The platform: an instrument and today's price.
fund="JP90TOUR${RUN: -4}"
call "$root" POST /v1/instruments "{\"code\":\"$fund\",\"name\":\"Global Balanced Fund\",\"kind\":\"investment_trust\",\"currency\":\"JPY\",\"unit_scale\":0,\"quote_unit\":10000,\"min_order_amount\":\"100\",\"settlement_days\":2}" >/dev/null
today=$(TZ=Asia/Tokyo date +%F)
call "$root" POST /v1/prices "{\"prices\":[{\"instrument\":\"$fund\",\"date\":\"$today\",\"price\":\"12345\"}]}" >/dev/null

# The manager: a strategy and its model.
strategy=$(call "$manager" POST /v1/strategies '{"code":"BAL","name":"Balanced","base_currency":"JPY","risk_level":3,"expected_return_annual":"0.045","volatility_annual":"0.11","drift_band_kind":"absolute","drift_band":"0.05","rebalance_calendar":"quarterly","cooldown_days":20,"min_initial_investment":"100000"}' | jq -r .id)
call "$manager" POST "/v1/strategies/$strategy/versions" "{\"effective_date\":\"$today\",\"cash_weight\":\"0.02\",\"weights\":[{\"instrument\":\"$fund\",\"weight\":\"0.98\"}]}" >/dev/null

# The distributor proposes an agreement; the manager accepts it.
agreement=$(call "$bank" POST /v1/agreements "{\"manager_tenant_id\":\"$manager_id\",\"strategy_id\":\"$strategy\",\"terms\":{\"effective_date\":\"$today\",\"management_fee\":{\"kind\":\"tiered\",\"tiers\":[{\"up_to\":\"30000000\",\"rate_annual\":\"0.011\"},{\"up_to\":null,\"rate_annual\":\"0.009\"}]},\"split\":{\"channel\":\"0.5\",\"manager\":\"0.4\",\"platform\":\"0.1\"},\"billing_period\":\"quarterly\"}}" | jq -r .id)
call "$manager" POST "/v1/agreements/$agreement/accept" >/dev/null

# A customer, cash from the bank's settlement, a wrap with a goal, a contribution.
customer=$(call "$bank" POST /v1/customers '{"external_ref":"C-0001","name":"Hanako Yamada","date_of_birth":"1980-04-01","risk_tolerance":3}' | jq -r .id)
call "$bank" POST "/v1/customers/$customer/deposits" '{"amount":"1000000","reference":"SETTLE-0001"}' "dep-$RUN" >/dev/null
# A retry with the same key returns the first answer and moves nothing.
call "$bank" POST "/v1/customers/$customer/deposits" '{"amount":"1000000","reference":"SETTLE-0001"}' "dep-$RUN" >/dev/null
wrap=$(call "$bank" POST "/v1/customers/$customer/wraps" "{\"agreement_id\":\"$agreement\",\"name\":\"Retirement\",\"goal\":{\"name\":\"Retire at 65\",\"target_amount\":\"20000000\",\"target_date\":\"2045-04-01\"}}" | jq -r .id)
call "$bank" POST "/v1/wraps/$wrap/contributions" '{"amount":"600000"}' "con-$RUN" >/dev/null
call "$bank" POST "/v1/wraps/$wrap/contributions" '{"amount":"500000"}' "con2-$RUN" >/dev/null
call "$bank" POST "/v1/wraps/$wrap/plans" '{"kind":"contribution","amount":"30000","day_of_month":27}' >/dev/null
call "$bank" POST "/v1/wraps/$wrap/withdrawals" '{"amount":"100000"}' "wd-$RUN" >/dev/null

# What each party sees.
call "$bank" GET "/v1/customers/$customer" >/dev/null
call "$manager" GET "/v1/wraps?strategy_id=$strategy" >/dev/null
call "$root" GET /v1/ledger/reconciliation >/dev/null
call "$root" GET /v1/ledger/trial-balance >/dev/null
