"""recipient_activity: one row per (recipient, campaign) with counts per type, first and
last activity, the last event type and the distinct clicked links; newest activity
first, paged. Look-ups by campaign or by recipient without dates or type read the
recipient rollups; anything else reads raw rows."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from api.cache import CampaignCache
from api.cache.events import CLICK, KIND_BY_RANK, KIND_SLOTS, KINDS, NAME_RANK, texts
from api.params import MAX_EPOCH, MIN_EPOCH, ParameterError, date_range
from api.pipes.base import (
    Param,
    Pipe,
    Plan,
    date_params,
    from_cache,
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
    cached = from_cache(SQL_COLUMNS, lambda cache: recipients_from_cache(
        cache, campaign_id, start, end, KINDS.get(event_type, 0), recipient_id,
        recipient_email, limit, offset)) if campaign_id else None
    if bounded or event_type or recipient_email:
        return Plan("recipient_activity_raw.sql", {
            **common, "recipient_email": recipient_email, "event_type": event_type,
            "start_date": sql_datetime(start), "end_date": sql_datetime(end),
        }, strip_total, cached)
    sql = "recipient_activity_by_recipient.sql" if recipient_id else \
        "recipient_activity_by_campaign.sql"
    return Plan(sql, common, strip_total, cached)


def recipients_from_cache(cache: CampaignCache, campaign_id: str, start: int, end: int,
                          kind: int, recipient_id: str, recipient_email: str, limit: int,
                          offset: int) -> tuple[list[tuple], int] | None:
    """recipient_activity rows (with the `_total` column, as the SQL returns them) for
    one campaign, and how many events were read; None when it is not cached."""
    with cache.reading(campaign_id) as held:
        if held is None:
            return None
        entry, strings = held.events, held.strings
        ts, kinds, recipients, emails, links, _, local = entry.window(start, end)
        read = len(ts)
        keep = None
        for wanted, values, interner in (
                (recipient_id, recipients, strings["recipient"]),
                (recipient_email, emails, strings["email"])):
            if wanted:
                number = interner.numbers.get(wanted, -1)
                keep = (values == number) if keep is None else keep & (values == number)
        if kind:
            keep = (kinds == kind) if keep is None else keep & (kinds == kind)
        if keep is not None:
            ts, kinds, emails, links, local = (
                ts[keep], kinds[keep], emails[keep], links[keep], local[keep])
        if not len(ts) or limit == 0:
            return [], read
        # Per campaign recipient (dense numbers): counts, first/last event positions (the
        # window is in time order) and the greatest (time, type name), as
        # argMax(event_type, (timestamp, event_type)).
        size = len(entry.recipients)
        counts = np.bincount(local * KIND_SLOTS + kinds, minlength=size * KIND_SLOTS).reshape(
            size, KIND_SLOTS)
        present = np.flatnonzero(counts.any(axis=1))
        total = len(present)
        positions = np.arange(len(ts))
        first_at = np.full(size, len(ts), dtype=np.int64)
        np.minimum.at(first_at, local, positions)
        last_at = np.full(size, -1, dtype=np.int64)
        np.maximum.at(last_at, local, positions)
        last_key = np.zeros(size, dtype=np.uint64)
        np.maximum.at(last_key, local, ts.astype(np.uint64) * KIND_SLOTS + NAME_RANK[kinds])
        last = (last_key[present] // KIND_SLOTS).astype(np.int64)
        # The page: newest activity first, then recipient_id; sort only the candidates.
        wanted_rows = offset + limit
        if wanted_rows < total:
            cutoff = np.partition(-last, wanted_rows - 1)[wanted_rows - 1]
            candidates = np.flatnonzero(-last <= cutoff)
        else:
            candidates = np.arange(total)
        names = strings["recipient"].values
        name_of = entry.recipients
        chosen = present[candidates]
        keyed = sorted(zip((-last[candidates]).tolist(),
                           [names[n] for n in name_of[chosen].tolist()],
                           chosen.tolist(), strict=True))
        page = [r for _, _, r in keyed[offset:offset + limit]]
        # Distinct clicked links of the page's recipients.
        link_values = strings["link"].values
        page_index = np.array(page, dtype=np.int64)
        on_page = np.zeros(size, dtype=bool)
        on_page[page_index] = True
        is_link = (kinds == CLICK) & (links != 0) & on_page[local]
        link_sets: dict[int, set[str]] = {}
        for r, link in zip(local[is_link].tolist(), links[is_link].tolist(), strict=True):
            link_sets.setdefault(r, set()).add(link_values[link])
        clicked = {r: sorted(links_of) for r, links_of in link_sets.items()}
        email_values = strings["email"].values
        page_emails = emails[last_at[page_index]].tolist()  # argMax(email, timestamp)
        page_keys = last_key[page_index]
        times = texts(np.concatenate([ts[first_at[page_index]], page_keys // KIND_SLOTS]))
        page_first, page_last = times[:len(page)], times[len(page):]
        page_kinds = (page_keys % KIND_SLOTS).tolist()
        page_counts = counts[page_index, 1:].tolist()
        rows = [
            (names[name_of[r]], email_values[email], campaign_id, *group_counts,
             first, last, KIND_BY_RANK[rank], clicked.get(r, []), total)
            for r, email, group_counts, first, last, rank in zip(
                page, page_emails, page_counts, page_first, page_last, page_kinds,
                strict=True)
        ]
    return rows, read


PIPE = Pipe(
    name=NAME,
    description="One row per (recipient, campaign): counts per event type, first and last "
    "activity, last event type, distinct clicked links; newest activity first.",
    params=PARAMS, columns=COLUMNS, plan=plan,
    sql_files=("recipient_activity_raw.sql", "recipient_activity_by_recipient.sql",
               "recipient_activity_by_campaign.sql"),
)
