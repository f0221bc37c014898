-- One month partition of the live raw table into the shadow database; the shadow
-- materialized views compute the rollups from it.
INSERT INTO {shadow_db}.email_events
SELECT * FROM email_events WHERE _partition_id = {partition_id:String}
SETTINGS insert_deduplicate = 0
