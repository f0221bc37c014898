-- The distinct strings behind campaign_events.sql's hashes (the serving cache interns
-- them; two strings with one hash make the load fail, never a wrong join).
SELECT 'recipient' AS column, cityHash64(recipient_id) AS hash, recipient_id AS value
FROM email_events
WHERE campaign_id IN {campaign_ids:Array(String)}
GROUP BY recipient_id
UNION ALL
SELECT 'email', cityHash64(recipient_email), recipient_email
FROM email_events
WHERE campaign_id IN {campaign_ids:Array(String)}
GROUP BY recipient_email
UNION ALL
SELECT 'link', cityHash64(link_url), link_url
FROM email_events
WHERE campaign_id IN {campaign_ids:Array(String)}
GROUP BY link_url
