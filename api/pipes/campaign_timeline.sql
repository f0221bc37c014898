-- campaign_timeline: one campaign's metrics per bucket (hour, day, week from Monday,
-- month; UTC). Whole hours from campaign_hourly, partial edge hours from raw rows; an
-- hour always lies inside one bucket, so merging per bucket stays exact. Empty
-- buckets are filled with zeros and rates added by api/pipes/campaign_timeline.py.
SELECT
    bucket,
    -- metrics timeline merge
    sum(sends) AS sends,
    sum(delivered) AS delivered,
    sum(opens) AS opens,
    sum(clicks) AS clicks,
    sum(bounces) AS bounces,
    sum(complaints) AS complaints,
    sum(unsubscribes) AS unsubscribes,
    uniqExactMerge(unique_opens) AS unique_opens,
    uniqExactMerge(unique_clicks) AS unique_clicks,
    sum(machine_opens) AS machine_opens,
    sum(machine_clicks) AS machine_clicks,
    uniqExactMerge(unique_human_opens) AS unique_human_opens,
    uniqExactMerge(unique_human_clicks) AS unique_human_clicks
    -- end metrics
FROM
(
    SELECT
        multiIf({granularity:String} = 'hour', hour,
                {granularity:String} = 'day', toStartOfDay(hour),
                {granularity:String} = 'week', toDateTime(toMonday(hour), 'UTC'),
                toDateTime(toStartOfMonth(hour), 'UTC')) AS bucket,
        -- metrics timeline columns
        sends, delivered, opens, clicks, bounces, complaints, unsubscribes, unique_opens,
        unique_clicks, machine_opens, machine_clicks, unique_human_opens,
        unique_human_clicks
        -- end metrics
    FROM campaign_hourly
    WHERE campaign_id = {campaign_id:String}
      AND hour >= {whole_from:DateTime('UTC')} AND hour < {whole_to:DateTime('UTC')}

    UNION ALL

    SELECT
        multiIf({granularity:String} = 'hour', toStartOfHour(timestamp),
                {granularity:String} = 'day', toStartOfDay(timestamp),
                {granularity:String} = 'week', toDateTime(toMonday(timestamp), 'UTC'),
                toDateTime(toStartOfMonth(timestamp), 'UTC')) AS bucket,
        -- metrics timeline state
        countIf(event_type = 'send') AS sends,
        countIf(event_type = 'delivered') AS delivered,
        countIf(event_type = 'open') AS opens,
        countIf(event_type = 'click') AS clicks,
        countIf(event_type = 'bounce') AS bounces,
        countIf(event_type = 'complaint') AS complaints,
        countIf(event_type = 'unsubscribe') AS unsubscribes,
        uniqExactStateIf(recipient_id, event_type = 'open') AS unique_opens,
        uniqExactStateIf(recipient_id, event_type = 'click') AS unique_clicks,
        countIf(event_type = 'open' AND machine) AS machine_opens,
        countIf(event_type = 'click' AND machine) AS machine_clicks,
        uniqExactStateIf(recipient_id, event_type = 'open' AND NOT machine) AS unique_human_opens,
        uniqExactStateIf(recipient_id, event_type = 'click' AND NOT machine) AS unique_human_clicks
        -- end metrics
    FROM email_events
    WHERE campaign_id = {campaign_id:String}
      AND timestamp >= {start_date:DateTime('UTC')} AND timestamp <= {end_date:DateTime('UTC')}
      AND NOT (timestamp >= {whole_from:DateTime('UTC')} AND timestamp < {whole_to:DateTime('UTC')})
    GROUP BY bucket
)
GROUP BY bucket
ORDER BY bucket
