-- Quarantined rows, newest first (ADMIN or DATASOURCES:READ:email_events).
SELECT
    insertion_date, c__error_column, c__error, c__import_id,
    event_id, timestamp, event_type, campaign_id, email_id, recipient_id,
    recipient_email, link_url, metadata, user_agent, machine, c__raw
FROM email_events_quarantine
ORDER BY insertion_date DESC, c__import_id
LIMIT {limit:UInt32} OFFSET {offset:UInt32}
