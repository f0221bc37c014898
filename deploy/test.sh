#!/usr/bin/env bash
# `make test`: start the broker if needed, run pytest, stop the broker if we started it.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
STARTED=0
if ! $BIN/python -m deploy.kafka status >/dev/null 2>&1; then
  $BIN/python -m deploy.kafka up || { echo "FATAL: the Kafka broker could not start"; exit 1; }
  STARTED=1
fi
$BIN/ruff check . || { echo "ruff found problems"; RUFF_FAILED=1; }
$BIN/python -m pytest "$@"
STATUS=$?
if [[ $STARTED == 1 ]]; then $BIN/python -m deploy.kafka down; fi
if [[ ${RUFF_FAILED:-0} == 1 && $STATUS == 0 ]]; then STATUS=1; fi
exit $STATUS
