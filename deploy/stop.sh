#!/usr/bin/env bash
# `make stop`: stop `campaigns serve` (pidfile) and the local broker. Leaves no process behind.
set -uo pipefail
cd "$(dirname "$0")/.."
DATA_DIR="${CAMPAIGNS_DATA_DIR:-var}"
PIDFILE="$DATA_DIR/serve.pid"
if [[ -f "$PIDFILE" ]]; then
  PID=$(cat "$PIDFILE")
  if kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID"
    for _ in $(seq 1 60); do kill -0 "$PID" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$PID" 2>/dev/null && { echo "[serve] did not stop in 30s, killing"; kill -KILL "$PID"; }
    echo "[serve] stopped (pid $PID)"
  fi
  rm -f "$PIDFILE"
else
  echo "[serve] not running"
fi
if [[ -x .venv/bin/python ]]; then
  .venv/bin/python -m deploy.kafka down
fi
