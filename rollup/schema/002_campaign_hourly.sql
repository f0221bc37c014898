-- Per-campaign hourly rollup. Counts are plain sums (the worker has already dropped
-- duplicate event_ids); unique opens/clicks keep exact sets of recipient_id so that
-- they merge exactly across hours.
CREATE TABLE IF NOT EXISTS campaign_hourly
(
    `campaign_id` String,
    `hour` DateTime('UTC'),
    `sends` SimpleAggregateFunction(sum, UInt64),
    `delivered` SimpleAggregateFunction(sum, UInt64),
    `opens` SimpleAggregateFunction(sum, UInt64),
    `clicks` SimpleAggregateFunction(sum, UInt64),
    `bounces` SimpleAggregateFunction(sum, UInt64),
    `complaints` SimpleAggregateFunction(sum, UInt64),
    `unsubscribes` SimpleAggregateFunction(sum, UInt64),
    `unique_opens` AggregateFunction(uniqExact, String),
    `unique_clicks` AggregateFunction(uniqExact, String),
    `first_event` SimpleAggregateFunction(min, DateTime('UTC')),
    `last_event` SimpleAggregateFunction(max, DateTime('UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (campaign_id, hour)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS campaign_hourly_mv TO campaign_hourly AS
SELECT
    campaign_id,
    toStartOfHour(timestamp) AS hour,
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
    max(timestamp) AS last_event
FROM email_events
GROUP BY campaign_id, hour;
