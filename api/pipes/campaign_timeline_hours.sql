-- campaign_timeline when [start_date, end_date] has no partial hour: the hourly rollup alone.
SELECT
    multiIf({granularity:String} = 'hour', hour,
            {granularity:String} = 'day', toStartOfDay(hour),
            {granularity:String} = 'week', toDateTime(toMonday(hour), 'UTC'),
            toDateTime(toStartOfMonth(hour), 'UTC')) AS bucket,
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
FROM campaign_hourly
WHERE campaign_id = {campaign_id:String}
  AND hour >= {whole_from:DateTime('UTC')} AND hour < {whole_to:DateTime('UTC')}
GROUP BY bucket
ORDER BY bucket
