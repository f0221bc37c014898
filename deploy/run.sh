#!/usr/bin/env bash
# `make run`: broker up, `campaigns serve` in the background, demo events, example curls.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
DATA_DIR="${CAMPAIGNS_DATA_DIR:-var}"
HOST="${CAMPAIGNS_API_HOST:-127.0.0.1}"
PORT="${CAMPAIGNS_API_PORT:-7181}"
BASE="http://$HOST:$PORT"
PIDFILE="$DATA_DIR/serve.pid"
LOG="$DATA_DIR/serve.log"
mkdir -p "$DATA_DIR"

$BIN/python -m deploy.kafka up

if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  echo "[serve] already running (pid $(cat "$PIDFILE"))"
else
  echo "[serve] starting campaigns serve (log: $LOG)"
  nohup $BIN/campaigns serve >>"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
fi

for _ in $(seq 1 120); do
  if curl -fs "$BASE/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "[serve] campaigns serve exited; last log lines:"; tail -n 30 "$LOG"; exit 1
  fi
  sleep 0.5
done
curl -fs "$BASE/health" >/dev/null || { echo "[serve] not healthy after 60s"; tail -n 30 "$LOG"; exit 1; }
echo "[serve] healthy at $BASE"

TOKEN="${CAMPAIGNS_ADMIN_TOKEN:-$($BIN/campaigns token list | awk -F '\t' '$1=="admin"{print $3}')}"

echo "[demo] emitting 20,000 synthetic events (5 campaigns; re-running sends the same"
echo "       event_ids again, which the dedup window drops: the numbers stay put)"
$BIN/campaigns emit --synthetic 20000 --campaigns 5 --seed 42 --quiet

# Wait until the worker has caught up with the topic.
for _ in $(seq 1 60); do
  LAG=$(curl -fs "$BASE/health" | $BIN/python -c 'import json,sys; print(json.load(sys.stdin).get("worker",{}).get("consumer_lag",1))')
  [[ "$LAG" == "0" ]] && break
  sleep 0.5
done

RECIPIENT=$(curl -fs "$BASE/v0/pipes/recipient_activity.json?campaign_id=camp_1&limit=1&token=$TOKEN" \
  | $BIN/python -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["recipient_id"])')

# The dashboard, one click away: the token rides in the URL fragment, which the browser
# never sends; the page moves it to sessionStorage and out of the address bar at once.
FRAGMENT_TOKEN=$($BIN/python -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$TOKEN")

cat <<MSG

Ready. campaigns serve is running (pid $(cat "$PIDFILE"), log $LOG); \`make stop\` stops it.

Dashboard (open it; the token is in the #fragment, never sent to the server in a URL):

  $BASE/dashboard#token=$FRAGMENT_TOKEN

Admin token (the README's examples use \$TOKEN; paste this line first):

  export TOKEN=$TOKEN

  curl -s "$BASE/v0/pipes/campaign_stats.json?token=\$TOKEN"
  curl -s "$BASE/v0/pipes/campaign_stats.json?campaign_id=camp_1&start_date=2025-05-01+00:00:00&end_date=2025-05-31+23:59:59" -H "Authorization: Bearer \$TOKEN"
  curl -s "$BASE/v0/pipes/campaign_timeline.json?campaign_id=camp_1&granularity=day" -H "Authorization: Bearer \$TOKEN"
  curl -s "$BASE/v0/pipes/recipient_activity.json?recipient_id=$RECIPIENT" -H "Authorization: Bearer \$TOKEN"

campaign_stats right now:
MSG
curl -fs "$BASE/v0/pipes/campaign_stats.json?token=$TOKEN" | $BIN/python -c '
import json, sys
body = json.load(sys.stdin)
cols = ["campaign_id", "sends", "delivered", "opens", "unique_opens", "clicks", "bounces", "open_rate", "click_to_open_rate"]
print("  " + "  ".join(f"{c:>13}" for c in cols))
for row in body["data"]:
    print("  " + "  ".join(f"{'null' if row[c] is None else row[c]!s:>13}" for c in cols))
stats = body["statistics"]
print("  (%d rows, %.1f ms)" % (body["rows"], stats["elapsed"] * 1000))
'
