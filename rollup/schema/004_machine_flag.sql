-- Human vs machine engagement (issue #12). The raw table stores each event's effective
-- machine flag (the producer's flag OR the worker's user-agent classification); rows
-- stored before this migration count as human (false) until a topic replay re-reads them.
ALTER TABLE email_events ADD COLUMN IF NOT EXISTS `machine` Bool DEFAULT false AFTER `user_agent`;

ALTER TABLE email_events_quarantine ADD COLUMN IF NOT EXISTS `machine` Nullable(String)
    AFTER `user_agent`;

-- The hourly rollup gains machine opens/clicks and the human unique sets. Existing hours
-- hold only human (pre-migration) events, so their human sets are their unique sets: the
-- DEFAULT expressions say exactly that for parts written before this migration.
ALTER TABLE campaign_hourly
    ADD COLUMN IF NOT EXISTS `machine_opens` SimpleAggregateFunction(sum, UInt64) DEFAULT 0,
    ADD COLUMN IF NOT EXISTS `machine_clicks` SimpleAggregateFunction(sum, UInt64) DEFAULT 0,
    ADD COLUMN IF NOT EXISTS `unique_human_opens` AggregateFunction(uniqExact, String)
        DEFAULT unique_opens,
    ADD COLUMN IF NOT EXISTS `unique_human_clicks` AggregateFunction(uniqExact, String)
        DEFAULT unique_clicks;

DROP VIEW IF EXISTS campaign_hourly_mv;

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
    max(timestamp) AS last_event,
    countIf(event_type = 'open' AND machine) AS machine_opens,
    countIf(event_type = 'click' AND machine) AS machine_clicks,
    uniqExactStateIf(recipient_id, event_type = 'open' AND NOT machine) AS unique_human_opens,
    uniqExactStateIf(recipient_id, event_type = 'click' AND NOT machine) AS unique_human_clicks
FROM email_events
GROUP BY campaign_id, hour;
