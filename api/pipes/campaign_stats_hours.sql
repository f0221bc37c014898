-- campaign_stats when [start_date, end_date] has no partial hour: the hourly rollup alone.
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
FROM campaign_hourly
WHERE hour >= {whole_from:DateTime('UTC')} AND hour < {whole_to:DateTime('UTC')}
  AND ({campaign_id:String} = '' OR campaign_id = {campaign_id:String})
GROUP BY campaign_id
ORDER BY campaign_start DESC, campaign_id
