"""The Kafka record key of an event: its campaign_id as UTF-8 bytes.

Keying by campaign puts a campaign's events in one partition, so one worker owns each
campaign's rows. Invariant: `kafka_key` is the only place a key is made from a
campaign_id; every producer (the Events API, the webhook receiver, `campaigns emit`)
reaches it through `validated_key`, `campaign_key` or `certain_key`
(ingest.webhooks.rows), which all answer `kafka_key` of the campaign_id they found.
"""

from __future__ import annotations

import orjson

from ingest.contract import Event, Rejection

_FIELD = b'"campaign_id"'
_COMPACT = b'"campaign_id":"'  # how orjson and compact producers write a string value


def kafka_key(campaign_id: str | None) -> bytes | None:
    """The record key of an event with this campaign_id (None when it has none)."""
    return None if campaign_id is None else campaign_id.encode()


def campaign_key(line: bytes) -> bytes | None:
    """The key of a raw, unvalidated message: `kafka_key` of its top-level string
    `campaign_id`, None when it has none (or it is not a string; such a line is
    quarantined or keyed by the caller that validated it).

    Read without decoding when the line has one compact, escape-free `"campaign_id":"`
    (the bytes of a JSON string without escapes are its UTF-8 text, i.e. kafka_key of
    the decoded value), so `campaigns emit` need not parse every line."""
    start = line.find(_COMPACT)
    if start >= 0:
        end = line.find(b'"', start + len(_COMPACT))
        value = line[start + len(_COMPACT):end]
        if end > 0 and b"\\" not in value and line.count(_FIELD) == 1:
            return value
    elif line.find(_FIELD) < 0:
        return None
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    value = record.get("campaign_id") if isinstance(record, dict) else None
    return kafka_key(value) if isinstance(value, str) else None


def validated_key(line: bytes, result: Event | Rejection) -> bytes | None:
    """The key of a message already validated as `result`: its event's campaign_id, or,
    for a quarantined one, whatever campaign_id the raw line names (so a campaign's bad
    rows still go to its partition)."""
    if isinstance(result, Event):
        return kafka_key(result.campaign_id)
    return campaign_key(line)
