#!/usr/bin/env bash
# The OpenAPI document `wrapd openapi` prints (the one served at /v1/openapi.json) must validate
# as OpenAPI 3.1 with zero errors: client generators and schema-driven fuzzers read it. Its
# request examples must be valid against their schemas, and the money-moving requests must
# have one.
set -euo pipefail
cd "$(dirname "$0")/.."
validator="openapi-spec-validator==0.9.0"
if ! python3 -c 'import openapi_spec_validator' 2>/dev/null; then
    python3 -m pip install --quiet "$validator"
fi
doc="$(mktemp)"
trap 'rm -f "$doc"' EXIT
cargo run --quiet -p api --bin wrapd -- openapi > "$doc"
python3 - "$doc" <<'PY'
import json, sys
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator
with open(sys.argv[1]) as f:
    spec = json.load(f)

errors = list(OpenAPIV31SpecValidator(spec).iter_errors())
for e in errors[:20]:
    print("openapi:", e.message, file=sys.stderr)


# Every request example (and parameter example) must be valid against its schema, and the
# money-moving requests must have one: they are what partners and generated SDKs copy.
def check(where, schema, value):
    # The schema is checked inside a document that carries the components, so that its
    # `#/components/...` references resolve.
    v = Draft202012Validator({**schema, "components": spec["components"]})
    return [f"{where}: {e.message}" for e in v.iter_errors(value)]


bad, examples = [], {}
for path, item in spec["paths"].items():
    for method, op in item.items():
        if not isinstance(op, dict) or "responses" not in op:
            continue
        name = op["operationId"]
        for mt, media in op.get("requestBody", {}).get("content", {}).items():
            found = [("example", media["example"])] if "example" in media else []
            found += [(k, x["value"]) for k, x in media.get("examples", {}).items()]
            examples[name] = examples.get(name, 0) + len(found)
            for label, value in found:
                bad += check(f"{name} {mt} {label}", media["schema"], value)
        for param in op.get("parameters", []):
            if "example" in param:
                bad += check(f"{name} {param['name']}", param["schema"], param["example"])
money_moving = ["deposit", "withdraw_customer_cash", "open_wrap", "contribute", "withdraw_from_wrap",
                "switch", "create_plan", "upload_prices", "report_fill"]
bad += [f"{name}: no request example" for name in money_moving if not examples.get(name)]
for b in bad:
    print("openapi: example:", b, file=sys.stderr)
print(f"openapi: {len(spec.get('paths', {}))} paths, {len(errors)} errors, "
      f"{sum(examples.values())} request examples, {len(bad)} bad or missing")
sys.exit(1 if errors or bad else 0)
PY
