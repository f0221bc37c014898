-- recipient_activity from the recipient rollup sorted by campaign_id (no date range, no
-- event_type): an index look-up, however many events the recipients have.
SELECT
    recipient_id,
    argMaxMerge(recipient_email) AS recipient_email,
    campaign_id,
    sum(sends) AS sends,
    sum(delivered) AS delivered,
    sum(opens) AS opens,
    sum(clicks) AS clicks,
    sum(bounces) AS bounces,
    sum(complaints) AS complaints,
    sum(unsubscribes) AS unsubscribes,
    CAST(min(first_activity) AS DateTime('UTC')) AS first_activity,
    CAST(max(last_activity) AS DateTime('UTC')) AS last_activity,
    argMaxMerge(last_event_type) AS last_event_type,
    arraySort(groupUniqArrayMerge(clicked_links)) AS clicked_links,
    count() OVER () AS _total
FROM recipient_campaign
WHERE campaign_id = {campaign_id:String}
  AND ({recipient_id:String} = '' OR recipient_id = {recipient_id:String})
GROUP BY campaign_id, recipient_id
ORDER BY last_activity DESC, campaign_id, recipient_id
LIMIT {limit:UInt32} OFFSET {offset:UInt32}
