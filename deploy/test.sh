#!/usr/bin/env bash
# `make test`: start the broker if needed, run pytest, stop the broker if we started it.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
# The dashboard's browser tests drive Debian's chromium (tests/test_dashboard_browser.py);
# they fail, not skip, without it. Installed once, only when missing.
if [[ ! -x /usr/bin/chromium ]]; then
  echo "[setup] installing Debian's chromium package for the browser tests"
  SUDO=""; [[ $(id -u) == 0 ]] || SUDO="sudo"
  { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
    && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
    || echo "WARNING: could not install chromium (apt-get install -y chromium); the browser tests will fail"
fi
# The suite's own broker: a port of its own (and so its own var/kafka-<port>), so it never
# writes test events into a broker someone runs on the default port (`make run`'s, or theirs).
export KAFKA_BOOTSTRAP_SERVERS=${CAMPAIGNS_TEST_KAFKA:-127.0.0.1:19092}
BROKER=($BIN/python -m deploy.kafka)
STARTED=0
if ! "${BROKER[@]}" status >/dev/null 2>&1; then
  "${BROKER[@]}" up || { echo "FATAL: the Kafka broker could not start"; exit 1; }
  STARTED=1
fi
$BIN/ruff check . || { echo "ruff found problems"; RUFF_FAILED=1; }
# In parallel (pytest-xdist): each worker has its own chDB directory and topics, and the
# test that restarts a broker mid-stream runs one of its own. Arguments go to pytest
# (`make test` passes none; `bash deploy/test.sh tests/api -k stats` runs a part).
$BIN/python -m pytest -n "${CAMPAIGNS_TEST_WORKERS:-3}" "$@"
STATUS=$?
if [[ $STARTED == 1 ]]; then "${BROKER[@]}" down; fi
if [[ ${RUFF_FAILED:-0} == 1 && $STATUS == 0 ]]; then STATUS=1; fi
exit $STATUS
