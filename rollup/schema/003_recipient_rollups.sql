-- One row per (campaign, recipient): counts per type, first/last activity, last event
-- type, distinct clicked links. Two tables with the same content and different sorting
-- keys, so look-ups by campaign and by recipient are both served by a primary index.
CREATE TABLE IF NOT EXISTS recipient_campaign
(
    `campaign_id` String,
    `recipient_id` String,
    `recipient_email` AggregateFunction(argMax, String, DateTime('UTC')),
    `sends` SimpleAggregateFunction(sum, UInt64),
    `delivered` SimpleAggregateFunction(sum, UInt64),
    `opens` SimpleAggregateFunction(sum, UInt64),
    `clicks` SimpleAggregateFunction(sum, UInt64),
    `bounces` SimpleAggregateFunction(sum, UInt64),
    `complaints` SimpleAggregateFunction(sum, UInt64),
    `unsubscribes` SimpleAggregateFunction(sum, UInt64),
    `first_activity` SimpleAggregateFunction(min, DateTime('UTC')),
    `last_activity` SimpleAggregateFunction(max, DateTime('UTC')),
    `last_event_type` AggregateFunction(argMax, String, Tuple(DateTime('UTC'), String)),
    `clicked_links` AggregateFunction(groupUniqArray, String)
)
ENGINE = AggregatingMergeTree
ORDER BY (campaign_id, recipient_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS recipient_campaign_by_recipient AS recipient_campaign
ENGINE = AggregatingMergeTree
ORDER BY (recipient_id, campaign_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS recipient_campaign_mv TO recipient_campaign AS
SELECT
    campaign_id,
    recipient_id,
    argMaxState(recipient_email, timestamp) AS recipient_email,
    countIf(event_type = 'send') AS sends,
    countIf(event_type = 'delivered') AS delivered,
    countIf(event_type = 'open') AS opens,
    countIf(event_type = 'click') AS clicks,
    countIf(event_type = 'bounce') AS bounces,
    countIf(event_type = 'complaint') AS complaints,
    countIf(event_type = 'unsubscribe') AS unsubscribes,
    min(timestamp) AS first_activity,
    max(timestamp) AS last_activity,
    argMaxState(event_type, (timestamp, event_type)) AS last_event_type,
    groupUniqArrayStateIf(link_url, event_type = 'click' AND link_url != '') AS clicked_links
FROM email_events
GROUP BY campaign_id, recipient_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS recipient_campaign_by_recipient_mv
TO recipient_campaign_by_recipient AS
SELECT
    campaign_id,
    recipient_id,
    argMaxState(recipient_email, timestamp) AS recipient_email,
    countIf(event_type = 'send') AS sends,
    countIf(event_type = 'delivered') AS delivered,
    countIf(event_type = 'open') AS opens,
    countIf(event_type = 'click') AS clicks,
    countIf(event_type = 'bounce') AS bounces,
    countIf(event_type = 'complaint') AS complaints,
    countIf(event_type = 'unsubscribe') AS unsubscribes,
    min(timestamp) AS first_activity,
    max(timestamp) AS last_activity,
    argMaxState(event_type, (timestamp, event_type)) AS last_event_type,
    groupUniqArrayStateIf(link_url, event_type = 'click' AND link_url != '') AS clicked_links
FROM email_events
GROUP BY campaign_id, recipient_id;

-- Recipient look-ups on raw rows (date-bounded recipient_activity) skip granules.
ALTER TABLE email_events ADD INDEX IF NOT EXISTS recipient_id_bloom recipient_id
    TYPE bloom_filter(0.01) GRANULARITY 4;
ALTER TABLE email_events ADD INDEX IF NOT EXISTS recipient_email_bloom recipient_email
    TYPE bloom_filter(0.01) GRANULARITY 4;
