#!/usr/bin/env bash
# Client SDKs generated from wrapd's OpenAPI document (the one served at /v1/openapi.json):
#   sdk/out/openapi.json   the document, as `wrapd openapi` prints it
#   sdk/out/python/        a Python package `wrap_client` (openapi-python-client), installed
#                          into the virtual environment sdk/.venv
#   sdk/out/typescript/    a TypeScript client on fetch (@hey-api/openapi-ts, its fetch client)
# Generated code is not committed (.gitignore): run this again after the API changes. The
# generators are pinned here and in sdk/typescript/package-lock.json; what is missing is
# installed (PyPI into sdk/.venv, npm into sdk/typescript/node_modules).
#
# Usage: sdk/generate.sh [WRAPD]   (default: builds target/debug/wrapd with cargo)
# Needs python3 (3.10 or later, with venv) and node 20.19 or later with npm.
set -euo pipefail
cd "$(dirname "$0")/.."

python_generator="openapi-python-client==0.29.1"
# The build backend of the package it writes (pyproject.toml asks for poetry-core 2), kept in
# the venv so that installing the package builds it there, without fetching it each time.
python_backend="poetry-core==2.5.0"

wrapd="${1:-}"
if [ -z "$wrapd" ]; then
    cargo build --quiet -p api --bin wrapd
    wrapd="$PWD/target/debug/wrapd"
fi

out=sdk/out
rm -rf "$out"
mkdir -p "$out"
"$wrapd" openapi > "$out/openapi.json"
echo "sdk: $out/openapi.json ($(wc -c < "$out/openapi.json") bytes)"

# Python: the generator and the generated package live in one virtual environment (the
# generator brings httpx and attrs, which are all the package needs; ruff, also its
# dependency, formats what it writes, so the venv's bin goes first on PATH).
venv=sdk/.venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --quiet --disable-pip-version-check)
if ! "$venv/bin/openapi-python-client" --version 2>/dev/null | grep -qx "openapi-python-client version: ${python_generator#*==}" ||
    ! "$venv/bin/python" -c 'import poetry.core' 2>/dev/null; then
    "${pip[@]}" install "$python_generator" "$python_backend"
fi
PATH="$PWD/$venv/bin:$PATH" "$venv/bin/openapi-python-client" generate \
    --path "$out/openapi.json" --output-path "$out/python" \
    --config sdk/python/config.yaml --overwrite > "$out/python-generator.log" 2>&1 || {
    cat "$out/python-generator.log" >&2
    exit 1
}
# Its warnings are expected only for the CSV alternatives of the uploads (config.yaml says
# why); any other warning is a part of the API the Python client lacks.
if grep '^WARNING' "$out/python-generator.log" | grep -Ev 'POST /v1/prices |POST /v1/ledger/reconciliation/custodian-statements ' >&2; then
    echo "sdk: openapi-python-client left something out (above; $out/python-generator.log)" >&2
    exit 1
fi
"${pip[@]}" install --no-deps --no-build-isolation --force-reinstall "$out/python"
"$venv/bin/python" -c 'import wrap_client, wrap_client.api, wrap_client.models'
echo "sdk: $out/python (wrap_client, installed into $venv)"

# TypeScript: the versions in package-lock.json. The install scripts are skipped: the only
# one (esbuild's, under tsx) just checks the platform binary npm installed beside it.
(
    cd sdk/typescript
    if ! npm ls --depth=0 >/dev/null 2>&1; then
        npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
    fi
    npx openapi-ts --file openapi-ts.config.ts > ../out/typescript-generator.log 2>&1 || {
        cat ../out/typescript-generator.log >&2
        exit 1
    }
    npx tsc --noEmit -p tsconfig.json
)
echo "sdk: $out/typescript (@hey-api/openapi-ts, type-checked with the tours)"
