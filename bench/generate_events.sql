-- Benchmark data, generated inside ClickHouse: `count` events from `start`, spread over
-- `campaigns` campaigns (campaign c starts c * 1000 / campaigns hours after 2025-05-01,
-- so 1,000 campaigns start an hour apart, and runs 7 days). Within a campaign, events
-- come in groups of four per recipient (a send, then delivered, open or click, bounce,
-- unsubscribe, complaint drawn with funnel-like weights), so a campaign of 10,000 events
-- reaches 2,500 recipients, as real ones do. The views fire as for any insert.
INSERT INTO email_events
    (event_id, timestamp, event_type, campaign_id, email_id, recipient_id, recipient_email,
     link_url, metadata, user_agent)
SELECT
    concat('ev_', toString(number)) AS event_id,
    toDateTime(1746057600 + intDiv(campaign * 3600000, {campaigns:UInt64})
               + cityHash64(number, 1) % 604800, 'UTC'),
    if(intDiv(number, {campaigns:UInt64}) % 4 = 0, 'send',
       ['delivered', 'delivered', 'delivered', 'delivered', 'open', 'open', 'open', 'click',
        'click', 'bounce', 'unsubscribe', 'complaint'][cityHash64(number, 2) % 12 + 1]) AS kind,
    concat('camp_', toString(campaign)),
    concat('email_', toString(campaign), '_', toString(recipient)),
    concat('user_', toString(recipient)),
    concat('user', toString(recipient), '@example.com'),
    if(kind = 'click', ['https://example.com/landing', 'https://example.com/pricing']
       [cityHash64(number, 4) % 2 + 1], ''),
    '{"source":"bench"}',
    'Mozilla/5.0'
FROM
(
    SELECT number, number % {campaigns:UInt64} AS campaign,
           (campaign * 7919 + intDiv(intDiv(number, {campaigns:UInt64}), 4)) % 200000
               AS recipient
    FROM numbers({start:UInt64}, {count:UInt64})
)
