-- Campaigns by latest activity, newest first, with their event counts: what the serving
-- cache warms up with, until its memory budget is used.
SELECT campaign_id, sum(sends + delivered + opens + clicks + bounces + complaints
                        + unsubscribes) AS events
FROM campaign_hourly
GROUP BY campaign_id
ORDER BY max(last_event) DESC, campaign_id
LIMIT {limit:UInt32}
