-- Every campaign stored (the serving cache checks it holds them all).
SELECT DISTINCT campaign_id FROM campaign_hourly
