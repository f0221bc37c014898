-- The tutorial's campaign_stats SQL over the raw table (its template's optional filters
-- filled in), the baseline the rollups are compared with.
SELECT
    campaign_id,
    sum(if(event_type = 'send', 1, 0)) AS sends,
    sum(if(event_type = 'open', 1, 0)) AS opens,
    sum(if(event_type = 'click', 1, 0)) AS clicks,
    sum(if(event_type = 'bounce', 1, 0)) AS bounces,
    sum(if(event_type = 'unsubscribe', 1, 0)) AS unsubscribes,
    round(opens / sends * 100, 2) AS open_rate,
    round(clicks / opens * 100, 2) AS click_to_open_rate,
    round(bounces / sends * 100, 2) AS bounce_rate,
    min(timestamp) AS campaign_start,
    max(timestamp) AS last_activity
FROM email_events
WHERE 1 = 1
    AND ({campaign_id:String} = '' OR campaign_id = {campaign_id:String})
    AND timestamp >= {start_date:DateTime('UTC')}
    AND timestamp <= {end_date:DateTime('UTC')}
GROUP BY campaign_id
ORDER BY campaign_start DESC
