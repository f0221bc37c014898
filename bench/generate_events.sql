-- Benchmark data, generated inside ClickHouse: `count` events from `start`, spread over
-- 1,000 campaigns (campaign c starts c hours after 2025-05-01 and runs 7 days), 200,000
-- recipients. The materialized views fire as for any insert.
INSERT INTO email_events
    (event_id, timestamp, event_type, campaign_id, email_id, recipient_id, recipient_email,
     link_url, metadata, user_agent)
SELECT
    concat('ev_', toString(number)) AS event_id,
    toDateTime(1746057600 + (number % 1000) * 3600 + cityHash64(number, 1) % 604800, 'UTC'),
    ['send', 'send', 'send', 'delivered', 'delivered', 'delivered', 'open', 'open', 'click',
     'bounce', 'unsubscribe', 'complaint'][cityHash64(number, 2) % 12 + 1] AS kind,
    concat('camp_', toString(number % 1000)),
    concat('email_', toString(number % 1000), '_', toString(cityHash64(number, 3) % 200000)),
    concat('user_', toString(cityHash64(number, 3) % 200000)),
    concat('user', toString(cityHash64(number, 3) % 200000), '@example.com'),
    if(kind = 'click', 'https://example.com/landing', ''),
    '{"source":"bench"}',
    'Mozilla/5.0'
FROM numbers({start:UInt64}, {count:UInt64})
