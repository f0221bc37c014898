-- event_ids stored within the dedup window, with the hour they were ingested.
SELECT event_id, toUnixTimestamp(toStartOfHour(ingested_at)) AS hour
FROM email_events
WHERE ingested_at >= now() - toIntervalSecond({window_seconds:UInt32})
