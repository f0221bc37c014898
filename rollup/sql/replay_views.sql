-- The materialized views on the raw table, with the SELECT each one runs.
SELECT name, as_select
FROM system.tables
WHERE database = {database:String} AND engine = 'MaterializedView'
ORDER BY name
