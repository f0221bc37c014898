-- recipient_activity from raw rows: used when a date range or an event_type narrows the
-- events, or when looking up by recipient_email. Campaign filters use the primary key,
-- recipient filters the bloom-filter skip indexes.
SELECT
    recipient_id,
    argMax(recipient_email, timestamp) AS recipient_email,
    campaign_id,
    countIf(event_type = 'send') AS sends,
    countIf(event_type = 'delivered') AS delivered,
    countIf(event_type = 'open') AS opens,
    countIf(event_type = 'click') AS clicks,
    countIf(event_type = 'bounce') AS bounces,
    countIf(event_type = 'complaint') AS complaints,
    countIf(event_type = 'unsubscribe') AS unsubscribes,
    min(timestamp) AS first_activity,
    max(timestamp) AS last_activity,
    argMax(event_type, (timestamp, event_type)) AS last_event_type,
    arraySort(groupUniqArrayIf(link_url, event_type = 'click' AND link_url != '')) AS clicked_links,
    count() OVER () AS _total
FROM
(
    -- filtered in a subquery: the outer aliases (recipient_email) must not shadow columns
    SELECT campaign_id, recipient_id, recipient_email, event_type, timestamp, link_url
    FROM email_events
    WHERE ({campaign_id:String} = '' OR campaign_id = {campaign_id:String})
      AND ({recipient_id:String} = '' OR recipient_id = {recipient_id:String})
      AND ({recipient_email:String} = '' OR recipient_email = {recipient_email:String})
      AND ({event_type:String} = '' OR event_type = {event_type:String})
      AND timestamp >= {start_date:DateTime('UTC')} AND timestamp <= {end_date:DateTime('UTC')}
)
GROUP BY campaign_id, recipient_id
ORDER BY last_activity DESC, campaign_id, recipient_id
LIMIT {limit:UInt32} OFFSET {offset:UInt32}
