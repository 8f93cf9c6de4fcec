"""The rules deploy/docker-compose.yml must keep, beyond the Compose schema (.ci/run, "deploy
lint"): the replicas and end of day start only after the migration exited 0, PostgreSQL has a
health check and a named volume, secrets are files (never values in the file), and the proxy
balances over both replicas. Usage: python3 compose_rules.py deploy/docker-compose.yml"""

import re
import sys
from pathlib import Path

from ruamel.yaml import YAML  # installed with check-jsonschema


def main(path: str) -> int:
    doc = YAML(typ="safe").load(Path(path).read_text())
    services = doc["services"]
    problems = []

    def need(cond, message):
        if not cond:
            problems.append(message)

    db = services.get("db", {})
    need(str(db.get("image", "")).startswith("postgres:15"), "db: PostgreSQL 15 image")
    need("healthcheck" in db, "db: a healthcheck")
    need(any(str(v).startswith("pgdata:") for v in db.get("volumes", [])), "db: the named volume pgdata")
    need("pgdata" in (doc.get("volumes") or {}), "volumes: pgdata declared")
    migrate = services.get("migrate", {})
    need(migrate.get("command", [])[-2:] == ["migrate", "up"], "migrate: runs `wrapd migrate up`")
    need(migrate.get("restart") == "no", "migrate: runs once (restart: no)")
    for name in ("api-1", "api-2", "eod"):
        svc = services.get(name, {})
        cond = (svc.get("depends_on") or {}).get("migrate", {}).get("condition")
        need(cond == "service_completed_successfully", f"{name}: waits for the migration to succeed")
    for name in ("api-1", "api-2"):
        need(services.get(name, {}).get("command") == ["wrapd", "serve"], f"{name}: runs `wrapd serve`")
    need(services.get("eod", {}).get("command", [None])[0] == "wrapd-eod", "eod: runs wrapd-eod")
    conf = (Path(path).parent / "compose" / "nginx.conf").read_text()
    for name in ("api-1", "api-2"):
        need(re.search(rf"server {name}:8080", conf), f"nginx.conf: balances over {name}")
    for name, secret in (doc.get("secrets") or {}).items():
        need(set(secret) == {"file"}, f"secret {name}: a file")
    text = Path(path).read_text()
    need("BEGIN PRIVATE KEY" not in text, "no key in the compose file")
    for name, svc in services.items():
        env = svc.get("environment") or {}
        for key, value in (env.items() if isinstance(env, dict) else []):
            if re.search(r"PASSWORD$|KEY_PEM$|DATABASE__URL$", key):
                problems.append(f"{name}: {key} is a value in the file; mount it as a secret")
    for p in problems:
        print(f"compose: missing or wrong: {p}", file=sys.stderr)
    if not problems:
        print(f"compose rules: {path} keeps every rule")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
