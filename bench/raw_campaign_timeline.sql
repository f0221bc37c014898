-- campaign_timeline's question (hourly) asked of the raw table directly.
SELECT
    toStartOfHour(timestamp) AS bucket,
    countIf(event_type = 'send') AS sends,
    countIf(event_type = 'delivered') AS delivered,
    countIf(event_type = 'open') AS opens,
    countIf(event_type = 'click') AS clicks,
    countIf(event_type = 'bounce') AS bounces,
    countIf(event_type = 'complaint') AS complaints,
    countIf(event_type = 'unsubscribe') AS unsubscribes,
    uniqExactIf(recipient_id, event_type = 'open') AS unique_opens,
    uniqExactIf(recipient_id, event_type = 'click') AS unique_clicks
FROM email_events
WHERE campaign_id = {campaign_id:String}
  AND timestamp >= {start_date:DateTime('UTC')} AND timestamp <= {end_date:DateTime('UTC')}
GROUP BY bucket
ORDER BY bucket
