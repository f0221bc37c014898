-- campaign_stats: whole hours come from campaign_hourly, the partial hours at either
-- end of [start_date, end_date] from raw rows; unique counts merge exact states.
-- {whole_from, whole_to} is the half-open range of whole hours inside the window
-- (empty when whole_from >= whole_to). Rates are added by api/pipes/campaign_stats.py.
-- campaign_stats_hours.sql is the same without the raw part, for ranges without
-- partial hours (ClickHouse plans it in half the time).
SELECT
    campaign_id,
    -- metrics campaign merge
    sum(sends) AS sends,
    sum(delivered) AS delivered,
    sum(opens) AS opens,
    sum(clicks) AS clicks,
    sum(bounces) AS bounces,
    sum(complaints) AS complaints,
    sum(unsubscribes) AS unsubscribes,
    uniqExactMerge(unique_opens) AS unique_opens,
    uniqExactMerge(unique_clicks) AS unique_clicks,
    CAST(min(first_event) AS DateTime('UTC')) AS campaign_start,
    CAST(max(last_event) AS DateTime('UTC')) AS last_activity,
    sum(machine_opens) AS machine_opens,
    sum(machine_clicks) AS machine_clicks,
    uniqExactMerge(unique_human_opens) AS unique_human_opens,
    uniqExactMerge(unique_human_clicks) AS unique_human_clicks
    -- end metrics
FROM
(
    SELECT
        campaign_id,
        -- metrics campaign columns
        sends, delivered, opens, clicks, bounces, complaints, unsubscribes, unique_opens,
        unique_clicks, first_event, last_event, machine_opens, machine_clicks,
        unique_human_opens, unique_human_clicks
        -- end metrics
    FROM campaign_hourly
    WHERE hour >= {whole_from:DateTime('UTC')} AND hour < {whole_to:DateTime('UTC')}
      AND ({campaign_id:String} = '' OR campaign_id = {campaign_id:String})

    UNION ALL

    SELECT
        campaign_id,
        -- metrics campaign state
        countIf(event_type = 'send') AS sends,
        countIf(event_type = 'delivered') AS delivered,
        countIf(event_type = 'open') AS opens,
        countIf(event_type = 'click') AS clicks,
        countIf(event_type = 'bounce') AS bounces,
        countIf(event_type = 'complaint') AS complaints,
        countIf(event_type = 'unsubscribe') AS unsubscribes,
        uniqExactStateIf(recipient_id, event_type = 'open') AS unique_opens,
        uniqExactStateIf(recipient_id, event_type = 'click') AS unique_clicks,
        min(timestamp) AS first_event,
        max(timestamp) AS last_event,
        countIf(event_type = 'open' AND machine) AS machine_opens,
        countIf(event_type = 'click' AND machine) AS machine_clicks,
        uniqExactStateIf(recipient_id, event_type = 'open' AND NOT machine) AS unique_human_opens,
        uniqExactStateIf(recipient_id, event_type = 'click' AND NOT machine) AS unique_human_clicks
        -- end metrics
    FROM email_events
    WHERE timestamp >= {start_date:DateTime('UTC')} AND timestamp <= {end_date:DateTime('UTC')}
      AND NOT (timestamp >= {whole_from:DateTime('UTC')} AND timestamp < {whole_to:DateTime('UTC')})
      AND ({campaign_id:String} = '' OR campaign_id = {campaign_id:String})
    GROUP BY campaign_id
)
GROUP BY campaign_id
ORDER BY campaign_start DESC, campaign_id
