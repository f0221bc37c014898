-- For each partition, the newest batch that touched it: the only one whose insert
-- may not have completed before a crash.
SELECT
    token,
    partitions,
    first_offsets,
    last_offsets,
    dropped_partitions,
    dropped_offsets
FROM ingest_batches
WHERE topic = {topic:String}
  AND token IN (
      SELECT argMax(token, created_at)
      FROM ingest_batches
      ARRAY JOIN partitions AS partition
      WHERE topic = {topic:String} AND has({partitions:Array(UInt32)}, partition)
      GROUP BY partition
  )
