#!/usr/bin/env bash
# The OpenAPI document `wrapd openapi` prints (the one served at /v1/openapi.json) must validate
# as OpenAPI 3.1 with zero errors: client generators and schema-driven fuzzers read it.
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
from openapi_spec_validator import OpenAPIV31SpecValidator
with open(sys.argv[1]) as f:
    spec = json.load(f)
errors = list(OpenAPIV31SpecValidator(spec).iter_errors())
for e in errors[:20]:
    print("openapi:", e.message, file=sys.stderr)
print(f"openapi: {len(spec.get('paths', {}))} paths, {len(errors)} errors")
sys.exit(1 if errors else 0)
PY
