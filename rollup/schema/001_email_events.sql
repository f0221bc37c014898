-- Raw events: the tutorial's data source (same columns, partitioning and sorting key),
-- times in UTC, plus ingested_at for the event_id dedup window.
CREATE TABLE IF NOT EXISTS email_events
(
    `event_id` String,
    `timestamp` DateTime('UTC'),
    `event_type` String,
    `campaign_id` String,
    `email_id` String,
    `recipient_id` String,
    `recipient_email` String,
    `link_url` String,
    `metadata` String,
    `user_agent` String,
    `ingested_at` DateTime('UTC') DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (campaign_id, event_type, timestamp)
SETTINGS non_replicated_deduplication_window = 10000;

-- Rows that failed validation, in Tinybird's quarantine shape (+ c__raw for messages
-- that were not a JSON object at all).
CREATE TABLE IF NOT EXISTS email_events_quarantine
(
    `event_id` Nullable(String),
    `timestamp` Nullable(String),
    `event_type` Nullable(String),
    `campaign_id` Nullable(String),
    `email_id` Nullable(String),
    `recipient_id` Nullable(String),
    `recipient_email` Nullable(String),
    `link_url` Nullable(String),
    `metadata` Nullable(String),
    `user_agent` Nullable(String),
    `c__error_column` Array(String),
    `c__error` Array(String),
    `c__import_id` Nullable(String),
    `c__raw` Nullable(String),
    `insertion_date` DateTime('UTC') DEFAULT now()
)
ENGINE = MergeTree
ORDER BY insertion_date
SETTINGS non_replicated_deduplication_window = 10000;

-- The worker's write-ahead record of each batch: written BEFORE the batch is
-- inserted, so that after a crash exactly the same batch (same offsets, same
-- dropped duplicates, same token) is re-sent and ClickHouse drops what landed.
CREATE TABLE IF NOT EXISTS ingest_batches
(
    `topic` String,
    `token` String,
    `created_at` DateTime64(6, 'UTC'),
    `partitions` Array(UInt32),
    `first_offsets` Array(Int64),
    `last_offsets` Array(Int64),
    `dropped_partitions` Array(UInt32),
    `dropped_offsets` Array(Int64)
)
ENGINE = MergeTree
ORDER BY (topic, created_at);
