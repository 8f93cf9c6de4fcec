#!/bin/sh
# Starts end of day for today's business date (the date in Asia/Tokyo), as the image's
# `wrapd-eod` command:
#
#   wrapd-eod once          run today's date now, then exit (a Kubernetes CronJob)
#   wrapd-eod daily HH:MM   every day at HH:MM Tokyo time, forever (the docker compose `eod`
#                           service)
#
# End of day is claimed in the database (`wrapd eod --help`), so several runners, a manual
# run or a POST /v1/operations/eod at the same time are safe: the second waits up to
# EOD_WAIT_SECONDS (default 900) for the first, then finds the date finished. Exit status of
# `once`: 0 when the date finished or waits for external fills (wrapd's 3: not a failure,
# the date goes on when it is run again after the fills), otherwise wrapd's (1: refused or a
# failed check, e.g. a date before today not yet run; 4: another process still ran it after
# the wait), so the Job fails and alerts. A missed date is never skipped: end of day refuses
# to run today before it, and names the date it expects (docs/OPERATIONS.md, "End of day").
set -eu

wait_seconds="${EOD_WAIT_SECONDS:-900}"
child=""
trap 'if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null || true; fi; exit 143' TERM INT

log() {
    printf '%s wrapd-eod: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2
}

# Japan keeps UTC+9 all year (no daylight saving), so no time zone data is needed.
today_in_tokyo() {
    date -u -d '+9 hours' +%F
}

run_once() {
    day="$(today_in_tokyo)"
    log "starting end of day for $day (waiting up to ${wait_seconds}s if another process runs it)"
    status=0
    wrapd eod --date "$day" --wait "$wait_seconds" &
    child=$!
    wait "$child" || status=$?
    child=""
    case "$status" in
        0) log "end of day for $day finished" ;;
        3) log "end of day for $day awaits fills of external instructions; run it again when they are in"
           status=0 ;;
        4) log "another process still runs end of day after ${wait_seconds}s" ;;
        *) log "end of day for $day FAILED (exit $status)" ;;
    esac
    return "$status"
}

# Seconds from now to the next HH:MM in Tokyo.
seconds_until() {
    now="$(date -u +%s)"
    next="$(date -u -d "$(today_in_tokyo) $1 +0900" +%s)"
    if [ "$next" -le "$now" ]; then
        next=$((next + 86400))
    fi
    echo $((next - now))
}

case "${1:-}" in
    once)
        run_once
        ;;
    daily)
        at="${2:-}"
        case "$at" in
            [0-2][0-9]:[0-5][0-9]) ;;
            *) echo "usage: wrapd-eod daily HH:MM (Tokyo time)" >&2; exit 2 ;;
        esac
        while true; do
            pause="$(seconds_until "$at")"
            log "next end of day at $at Tokyo time, in ${pause}s"
            sleep "$pause" &
            child=$!
            wait "$child"
            child=""
            run_once || true
        done
        ;;
    *)
        echo "usage: wrapd-eod once | wrapd-eod daily HH:MM (Tokyo time)" >&2
        exit 2
        ;;
esac
