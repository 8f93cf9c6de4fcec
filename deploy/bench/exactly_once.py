#!/usr/bin/env python3
"""The exactly-once check after deploy/bench/mixed.sh: every acknowledged money movement is in
the books once, and nothing else was booked.

    exactly_once.py DATABASE_URL OPENING_ENTRIES ACK_FILE...

* every line of the ACK_FILEs (the entry id of a 201 answer) is unique and an entry of the
  books;
* each stored Idempotency-Key of the run (`mix-%`) answered with one entry, and the movement
  entries (deposits and withdrawals) are exactly the fixture's OPENING_ENTRIES opening
  deposits plus one per stored key: no movement without its key, none booked twice;
* acknowledged <= stored keys (a request in flight when wrk stopped may be booked without its
  answer having been read).
Reads SQLite with Python's sqlite3, PostgreSQL through psql. Exit 1 on any break.
"""
import json
import sqlite3
import subprocess
import sys
import uuid
from urllib.parse import urlsplit


def rows(url, sql):
    if url.startswith("sqlite:"):
        path = urlsplit(url).path or url.split(":", 1)[1].split("?")[0]
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return db.execute(sql).fetchall()
    out = subprocess.run(
        ["psql", "-AtX", "-F", "\t", url, "-c", sql], check=True, capture_output=True, text=True
    ).stdout
    return [tuple(line.split("\t")) for line in out.splitlines() if line]


def as_uuid(v):
    return uuid.UUID(bytes=v) if isinstance(v, bytes) else uuid.UUID(str(v))


def main():
    url, opening, ack_files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    acked = []
    for f in ack_files:
        with open(f) as fh:
            acked += [line.strip() for line in fh if line.strip()]
    breaks = []
    if "MISSING" in acked:
        breaks.append("a 201 answer without an entry_id")
    acked_ids = [uuid.UUID(a) for a in acked if a != "MISSING"]
    if len(set(acked_ids)) != len(acked_ids):
        breaks.append("an entry id acknowledged twice")
    moves = {
        as_uuid(r[0])
        for r in rows(url, "SELECT id FROM ledger_entries WHERE kind IN ('deposit', 'withdrawal')")
    }
    keyed = [
        uuid.UUID(json.loads(r[0])["entry_id"])
        for r in rows(url, "SELECT response FROM idempotency_keys WHERE key LIKE 'mix-%'")
    ]
    missing = set(acked_ids) - moves
    if missing:
        breaks.append(f"{len(missing)} acknowledged movements not in the books, e.g. {next(iter(missing))}")
    if len(set(keyed)) != len(keyed):
        breaks.append("two keys answered with the same entry")
    if not set(keyed) <= moves:
        breaks.append("a key's answer names an entry that is not in the books")
    if len(moves) != opening + len(keyed):
        breaks.append(
            f"{len(moves)} movement entries, expected {opening} opening + {len(keyed)} keyed "
            f"(a movement without its key, or booked twice)"
        )
    if len(acked_ids) > len(keyed):
        breaks.append(f"{len(acked_ids)} acknowledged but only {len(keyed)} keys stored")
    print(
        json.dumps(
            {
                "acknowledged": len(acked_ids),
                "keys_stored": len(keyed),
                "movement_entries": len(moves),
                "opening_entries": opening,
                "breaks": breaks,
            }
        )
    )
    sys.exit(1 if breaks else 0)


if __name__ == "__main__":
    main()
