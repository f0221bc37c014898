-- campaign_domains: one campaign's events per recipient domain over [start_date,
-- end_date], from raw rows (campaign_id leads the sorting key: one index range). The
-- domain is what follows the last '@' of recipient_email with ASCII letters lower-cased
-- (lower(), not lowerUTF8(): domain names compare ASCII-case-insensitively, RFC 4343,
-- and the serving cache reproduces it exactly); '' when there is no '@'. Most sends
-- first, then domain. Rates are added and _total (domains before the page) dropped by
-- api/pipes/campaign_domains.py.
SELECT
    domain,
    -- metrics domain final
    countIf(event_type = 'send') AS sends,
    countIf(event_type = 'delivered') AS delivered,
    countIf(event_type = 'bounce') AS bounces,
    countIf(event_type = 'complaint') AS complaints,
    countIf(event_type = 'open') AS opens,
    uniqExactIf(recipient_id, event_type = 'open') AS unique_opens,
    countIf(event_type = 'click') AS clicks,
    uniqExactIf(recipient_id, event_type = 'click') AS unique_clicks,
    -- end metrics
    count() OVER () AS _total
FROM
(
    SELECT
        if(position(recipient_email, '@') = 0, '',
           lower(substringIndex(recipient_email, '@', -1))) AS domain,
        event_type,
        recipient_id
    FROM email_events
    WHERE campaign_id = {campaign_id:String}
      AND timestamp >= {start_date:DateTime('UTC')} AND timestamp <= {end_date:DateTime('UTC')}
)
GROUP BY domain
ORDER BY sends DESC, domain
LIMIT {limit:UInt32} OFFSET {offset:UInt32}
