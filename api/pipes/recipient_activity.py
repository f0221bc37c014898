"""recipient_activity: one row per (recipient, campaign) with counts per type, first and
last activity, the last event type and the distinct clicked links; newest activity
first, paged. Look-ups by campaign or by recipient without dates or type read the
recipient rollups; anything else reads raw rows."""

from __future__ import annotations

from collections.abc import Mapping

from api.cache.query import CacheQuery
from api.params import MAX_EPOCH, MIN_EPOCH, ParameterError, date_range
from api.pipes.base import (
    Param,
    Pipe,
    Plan,
    date_params,
    page_params,
    sql_datetime,
    strip_total,
)
from ingest.contract import COUNT_COLUMNS, EVENT_TYPE_ALIASES, EVENT_TYPES

NAME = "recipient_activity"
COLUMNS = (("recipient_id", "String"), ("recipient_email", "String"),
           ("campaign_id", "String"), *((c, "UInt64") for c in COUNT_COLUMNS),
           ("first_activity", "DateTime"), ("last_activity", "DateTime"),
           ("last_event_type", "String"), ("clicked_links", "Array(String)"))
SQL_COLUMNS = (*COLUMNS, ("_total", "UInt64"))  # the total before the page, then dropped
KEYS = "at least one of recipient_id, recipient_email, campaign_id"
LIMIT, OFFSET = page_params()
PARAMS = (Param("recipient_id", "String", f"One recipient ({KEYS})"),
          Param("recipient_email", "String", f"One recipient address ({KEYS})"),
          Param("campaign_id", "String", f"One campaign ({KEYS})"),
          Param("event_type", "String", "Only events of this type (aliases accepted)"),
          *date_params(), LIMIT, OFFSET)


def plan(params: Mapping[str, str]) -> Plan:
    recipient_id, recipient_email, campaign_id = (
        str(PARAMS[i].read(params)) for i in range(3))
    if not (recipient_id or recipient_email or campaign_id):
        raise ParameterError("Required parameter is not defined: one of 'recipient_id', "
                             "'recipient_email' or 'campaign_id'")
    raw_type = str(PARAMS[3].read(params))
    event_type = ""
    if raw_type:
        event_type = EVENT_TYPE_ALIASES.get(raw_type.strip().lower(), "")
        if not event_type:
            raise ParameterError(f"Parameter 'event_type' must be one of "
                                 f"{', '.join(EVENT_TYPES)}, got '{raw_type[:64]}'")
    limit, offset = int(LIMIT.read(params)), int(OFFSET.read(params))
    start, end = date_range(params)
    bounded = start > MIN_EPOCH or end < MAX_EPOCH
    common = {"campaign_id": campaign_id, "recipient_id": recipient_id, "limit": limit,
              "offset": offset}
    cached = CacheQuery("recipient", None, SQL_COLUMNS, campaign_id, start, end,
                        limit=limit, offset=offset, recipient_id=recipient_id,
                        recipient_email=recipient_email, event_type=event_type) \
        if campaign_id else None
    if bounded or event_type or recipient_email:
        return Plan("recipient_activity_raw.sql", {
            **common, "recipient_email": recipient_email, "event_type": event_type,
            "start_date": sql_datetime(start), "end_date": sql_datetime(end),
        }, strip_total, cached)
    sql = "recipient_activity_by_recipient.sql" if recipient_id else \
        "recipient_activity_by_campaign.sql"
    return Plan(sql, common, strip_total, cached)


PIPE = Pipe(
    name=NAME,
    description="One row per (recipient, campaign): counts per event type, first and last "
    "activity, last event type, distinct clicked links; newest activity first.",
    params=PARAMS, columns=COLUMNS, plan=plan,
    sql_files=("recipient_activity_raw.sql", "recipient_activity_by_recipient.sql",
               "recipient_activity_by_campaign.sql"),
)
