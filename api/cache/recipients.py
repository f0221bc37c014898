"""recipient_activity from the serving cache: a group per recipient of one campaign's
window (counts per event type, first and last activity, the last event type as
argMax(event_type, (timestamp, event_type)), distinct clicked links), paged newest
activity first, then recipient_id, as the SQL orders."""

from __future__ import annotations

import numpy as np

from api.cache.events import (
    CLICK,
    KIND_BY_RANK,
    KIND_SLOTS,
    KINDS,
    NAME_RANK,
    HeldCampaign,
    Window,
    texts,
)
from api.cache.query import CacheQuery


def by_recipient(held: HeldCampaign, window: Window, query: CacheQuery) -> list[tuple]:
    """recipient_activity rows (with the `_total` column, as the SQL returns them) of one
    campaign's window, filtered by recipient, address and event type, paged."""
    campaign_id, limit, offset = query.campaign_id, query.limit, query.offset
    recipient_id, recipient_email = query.recipient_id, query.recipient_email
    kind = KINDS.get(query.event_type, 0)
    if True:  # (one block, as under the cache's lock: answers.answer holds it)
        entry, strings = held.events, held.strings
        ts, kinds, recipients, emails, links, _, local = window
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
            return []
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
    return rows
