-- The raw table's month partitions and their row counts.
SELECT partition_id, sum(rows)
FROM system.parts
WHERE database = {database:String} AND table = 'email_events' AND active
GROUP BY partition_id
ORDER BY partition_id
