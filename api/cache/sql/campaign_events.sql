-- Every event of the given campaigns, as the serving cache (api/cache/) keeps
-- them: the campaign's position in the list (1-based), epoch second, event type code
-- (position in the list below, as in ingest.contract.KIND_CODES), and cityHash64 of
-- recipient_id, recipient_email and link_url, joined in Python with the strings of
-- campaign_strings.sql. Read as RowBinary: fixed-width rows of 34 bytes.
SELECT
    toUInt32(indexOf({campaign_ids:Array(String)}, campaign_id)) AS campaign,
    toUInt32(timestamp) AS ts,
    toUInt8(indexOf(['send', 'delivered', 'open', 'click', 'bounce', 'complaint',
                     'unsubscribe'], event_type)) AS kind,
    cityHash64(recipient_id) AS recipient,
    cityHash64(recipient_email) AS email,
    cityHash64(link_url) AS link,
    toUInt8(machine) AS machine
FROM email_events
WHERE campaign_id IN {campaign_ids:Array(String)}
ORDER BY campaign, ts
