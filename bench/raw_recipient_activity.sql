-- recipient_activity's question (one campaign, newest 100 recipients) asked of the raw table.
SELECT
    recipient_id,
    campaign_id,
    countIf(event_type = 'send') AS sends,
    countIf(event_type = 'open') AS opens,
    countIf(event_type = 'click') AS clicks,
    min(timestamp) AS first_activity,
    max(timestamp) AS last_activity,
    argMax(event_type, timestamp) AS last_event_type,
    groupUniqArrayIf(link_url, event_type = 'click') AS clicked_links
FROM email_events
WHERE campaign_id = {campaign_id:String}
GROUP BY campaign_id, recipient_id
ORDER BY last_activity DESC
LIMIT 100
