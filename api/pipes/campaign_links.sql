-- campaign_links: one campaign's clicks per link over [start_date, end_date], from raw
-- rows. (campaign_id, event_type, timestamp) is the sorting key, so the rows read are one
-- index range: this campaign's clicks within the dates. Exact for any second-precision
-- range; no rollup, so ingestion pays nothing for it. Clicks without a link are left out.
-- Most clicked first, then link_url; _total (links before the page) is dropped by
-- api/pipes/campaign_links.py into rows_before_limit_at_least.
SELECT
    link_url,
    -- metrics link final
    countIf(event_type = 'click') AS clicks,
    uniqExactIf(recipient_id, event_type = 'click') AS unique_clicks,
    countIf(event_type = 'click' AND NOT machine) AS human_clicks,
    uniqExactIf(recipient_id, event_type = 'click' AND NOT machine) AS unique_human_clicks,
    minIf(timestamp, event_type = 'click') AS first_click,
    maxIf(timestamp, event_type = 'click') AS last_click,
    -- end metrics
    count() OVER () AS _total
FROM email_events
WHERE campaign_id = {campaign_id:String}
  AND event_type = 'click'
  AND timestamp >= {start_date:DateTime('UTC')} AND timestamp <= {end_date:DateTime('UTC')}
  AND link_url != ''
GROUP BY link_url
ORDER BY clicks DESC, link_url
LIMIT {limit:UInt32} OFFSET {offset:UInt32}
