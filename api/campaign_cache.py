"""The serving cache: an exact in-memory copy of hot campaigns' events, so that the
pipes answer questions about one campaign (campaign_stats, campaign_timeline,
recipient_activity; all campaigns' campaign_stats when every campaign is held) in
about a millisecond.

Why: one ClickHouse query costs 5-40 ms here however little it reads (planning
dominates, see docs/benchmarks.md), so no SQL plan meets the latency and throughput
targets. The cache keeps, per campaign, its events' epoch second, type code and numbers
for recipient_id, recipient_email and link_url (interned strings, shared by every
campaign: unique counts compare the strings themselves), sorted by time: any
second-precision range is two binary searches and a few vectorized counts. Each event
also carries its recipient's dense number within the campaign, so per-recipient answers
are bincounts. 21 bytes per event, plus the interned strings.

Exactness rests on three rules:
* it mirrors the raw table: loads read `email_events`, and the worker appends exactly
  the rows it inserted, after the insert succeeded;
* loads and appends both run under the worker's gate, so a batch is either in a load's
  snapshot or appended after it, never both or neither;
* it is active only while this process's worker owns every partition of the topic (the
  sole writer). Recovery, a rebalance, a failed write or a topic replay clears it, and
  anything not cached falls back to SQL.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

import numpy as np

from api.query import QueryPool
from ingest.contract import COUNT_COLUMNS, EVENT_TYPES, KIND_CODES, KIND_SLOTS
from rollup.batch import Batch
from rollup.clickhouse import load_sql

log = logging.getLogger("campaigns.cache")

SQL_DIR = Path(__file__).resolve().parent / "sql"

KINDS = KIND_CODES  # event type -> code (ingest.contract; sql/campaign_events.sql agrees)
OPEN, CLICK = KINDS["open"], KINDS["click"]
# argMax(event_type, (timestamp, event_type)): at equal times the greatest type *name* wins.
NAME_RANK = np.zeros(KIND_SLOTS, dtype=np.uint64)
for _rank, _name in enumerate(sorted(EVENT_TYPES)):
    NAME_RANK[KINDS[_name]] = _rank
KIND_BY_RANK = {int(NAME_RANK[code]): name for name, code in KINDS.items()}
# RowBinary rows of sql/campaign_events.sql; strings travel as cityHash64 and are joined
# with sql/campaign_strings.sql (a hash collision fails the load: SQL answers instead).
ROW = np.dtype([("campaign", "<u4"), ("ts", "<u4"), ("kind", "u1"), ("recipient", "<u8"),
                ("email", "<u8"), ("link", "<u8")])
STRING_COLUMNS = ("recipient", "email", "link")
__all__ = ["COUNT_COLUMNS", "KINDS", "CampaignCache", "ClickHouseSource"]
WEEK_OFFSET = 4 * 86400  # 1970-01-01 was a Thursday; weeks start on Monday 1970-01-05

WARM_UP = "\x00warm-up"  # a request for the newest campaigns, not a campaign id
BYTES_PER_EVENT = 24  # estimate for warm-up: 21 bytes + a share of the interned strings
BYTES_PER_STRING = 100  # estimate: a Python str's header, its dict slot and list slot
ENTRY_OVERHEAD = 1000  # estimate: a campaign's Python objects (entry, arrays, dict slot)
APPEND_GROUP = 32  # campaigns appended per hold of the lock
MISS_LOAD_CAMPAIGNS = 16  # campaigns per background load of misses (bounds a gate hold)
LOAD_CHUNK_EVENTS = 100_000  # per load: bounds how long a load pauses the worker (~0.2 s)


class Source(Protocol):
    def campaign_events(self, campaign_ids: Sequence[str]) -> bytes:
        """RowBinary rows of ROW for these campaigns (`campaign` = 1-based position)."""

    def campaign_strings(self, campaign_ids: Sequence[str]) -> list[tuple[str, int, str]]:
        """(column, cityHash64, value) of every distinct recipient_id ('recipient'),
        recipient_email ('email') and link_url ('link') of these campaigns."""

    def recent_campaigns(self, limit: int) -> list[tuple[str, int]]:
        """(campaign_id, events), most recently active first."""

    def all_campaigns(self) -> list[str]:
        """Every campaign_id stored."""


class LoadConflict(Exception):
    """Two distinct strings share a hash in one load: it cannot be joined exactly."""


class Interner:
    """Strings <-> dense numbers; 0 is the empty string."""

    def __init__(self) -> None:
        self.numbers: dict[str, int] = {"": 0}
        self.values: list[str] = [""]
        self.nbytes = BYTES_PER_STRING  # estimate: each string's length + its slots

    def number(self, value: str) -> int:
        number = self.numbers.get(value)
        if number is None:
            number = self.numbers[value] = len(self.values)
            self.values.append(value)
            self.nbytes += BYTES_PER_STRING + len(value)
        return number

    def join(self, hashes: np.ndarray, pairs: list[tuple[int, str]]) -> np.ndarray:
        """Numbers for rows given by hash, from the load's (hash, value) pairs."""
        known = np.array([h for h, _ in pairs], dtype=np.uint64)
        numbers = np.array([self.number(v) for _, v in pairs], dtype=np.uint32)
        order = np.argsort(known)
        known, numbers = known[order], numbers[order]
        if len(known) > 1 and bool(np.any(known[1:] == known[:-1])):
            raise LoadConflict("cityHash64 collision between two distinct strings")
        at = np.searchsorted(known, hashes)
        if len(hashes) and (not len(known) or bool(np.any(known[np.minimum(
                at, len(known) - 1)] != hashes))):
            raise LoadConflict("a row's string is missing from the string list")
        return numbers[at] if len(hashes) else np.empty(0, dtype=np.uint32)


def _in_order(ts: np.ndarray) -> bool:
    return bool(np.all(ts[1:] >= ts[:-1]))


class CampaignEvents:
    """One campaign's events in growable arrays, kept sorted by time lazily. Besides the
    interned numbers, each event carries its recipient's number *within the campaign*
    (dense, 0..recipients-1), so per-recipient answers are bincounts, not sorts."""

    __slots__ = ("columns", "size", "ordered", "local_keys", "local_numbers", "recipients")
    TYPES = (np.uint32, np.uint8, np.uint32, np.uint32, np.uint32, np.uint32)

    def __init__(self, values: Sequence[np.ndarray]) -> None:
        # local_keys: sorted interned numbers; local_numbers: their campaign numbers;
        # recipients: campaign number -> interned number.
        self.local_keys, local = np.unique(values[2], return_inverse=True)
        self.local_keys = self.local_keys.astype(np.uint32)
        self.local_numbers = np.arange(len(self.local_keys), dtype=np.uint32)
        self.recipients = self.local_keys.copy()
        self.columns = [np.array(v, dtype=t)
                        for v, t in zip((*values, local), self.TYPES, strict=True)]
        self.size = len(self.columns[0])
        self.ordered = _in_order(self.columns[0])  # loads arrive sorted by time

    @classmethod
    def empty(cls) -> CampaignEvents:
        return cls([np.empty(0, dtype=t) for t in cls.TYPES[:-1]])

    @property
    def nbytes(self) -> int:
        # + the Python objects themselves, so even empty campaigns count against the budget
        return (ENTRY_OVERHEAD + sum(c.nbytes for c in self.columns) + self.local_keys.nbytes
                + self.local_numbers.nbytes + self.recipients.nbytes)

    def _local(self, recipients: np.ndarray) -> np.ndarray:
        """Campaign numbers for these interned recipient numbers, numbering new ones."""
        keys = self.local_keys
        at = np.searchsorted(keys, recipients)
        known = at < len(keys)
        known[known] = keys[at[known]] == recipients[known]
        local = np.empty(len(recipients), dtype=np.uint32)
        local[known] = self.local_numbers[at[known]]
        if not known.all():
            new, inverse = np.unique(recipients[~known], return_inverse=True)
            numbers = np.arange(len(self.recipients), len(self.recipients) + len(new),
                                dtype=np.uint32)
            local[~known] = numbers[inverse]
            where = np.searchsorted(keys, new)
            self.local_keys = np.insert(keys, where, new)
            self.local_numbers = np.insert(self.local_numbers, where, numbers)
            self.recipients = np.concatenate([self.recipients, new])
        return local

    def append(self, values: Sequence[np.ndarray]) -> None:
        values = [*values, self._local(values[2])]
        count = len(values[0])
        end = self.size + count
        capacity = len(self.columns[0])
        if end > capacity:
            capacity = max(end, 2 * capacity, 64)
            for i, column in enumerate(self.columns):
                grown = np.empty(capacity, dtype=column.dtype)
                grown[:self.size] = column[:self.size]
                self.columns[i] = grown
        ts = values[0]
        if self.ordered and count:
            self.ordered = _in_order(ts) and (
                self.size == 0 or ts[0] >= self.columns[0][self.size - 1])
        for column, new in zip(self.columns, values, strict=True):
            column[self.size:end] = new
        self.size = end

    def window(self, start: int, end: int) -> list[np.ndarray]:
        """[ts, kind, recipient, email, link, local recipient] of the events with
        start <= ts <= end, in time order."""
        n = self.size
        if not self.ordered:  # a late event arrived: sort once, on the next read
            order = np.argsort(self.columns[0][:n], kind="stable")
            for column in self.columns:
                column[:n] = column[:n][order]
            self.ordered = True
        ts = self.columns[0][:n]
        lo = int(np.searchsorted(ts, start, side="left"))
        hi = int(np.searchsorted(ts, end, side="right"))
        return [column[lo:hi] for column in self.columns]


EMPTY = CampaignEvents.empty()  # what a complete cache answers for an unknown campaign
EPOCH = datetime(1970, 1, 1)


def _utc(epoch: int) -> datetime:
    """Naive UTC, as the SQL path returns DateTime('UTC') values."""
    return EPOCH + timedelta(seconds=epoch)


def _texts(epochs: np.ndarray) -> list[str]:
    """'YYYY-MM-DD HH:MM:SS' (UTC) for many epochs at once, as the renderers print
    DateTime values."""
    iso = np.datetime_as_string(epochs.astype("datetime64[s]"))
    return [text.replace("T", " ") for text in iso.tolist()]


def _distinct(local: np.ndarray, recipients: int) -> int:
    """Distinct campaign recipient numbers."""
    return int(np.count_nonzero(np.bincount(local, minlength=recipients))) if len(local) else 0


def _stats_row(campaign_id: str, entry: CampaignEvents, start: int,
               end: int) -> tuple[tuple | None, int]:
    ts, kind, _, _, _, local = entry.window(start, end)
    if not len(ts):
        return None, 0
    counts = np.bincount(kind, minlength=KIND_SLOTS).tolist()
    recipients = len(entry.recipients)
    return (campaign_id, *counts[1:], _distinct(local[kind == OPEN], recipients),
            _distinct(local[kind == CLICK], recipients), _utc(int(ts[0])),
            _utc(int(ts[-1]))), len(ts)


def bucket_starts(ts: np.ndarray, granularity: str) -> np.ndarray:
    """Each event's bucket start (epoch seconds, UTC; weeks from Monday)."""
    seconds = ts.astype(np.int64)
    if granularity == "hour":
        return seconds // 3600 * 3600
    if granularity == "day":
        return seconds // 86400 * 86400
    if granularity == "week":
        return (seconds - WEEK_OFFSET) // (7 * 86400) * (7 * 86400) + WEEK_OFFSET
    months = seconds.astype("datetime64[s]").astype("datetime64[M]")
    return months.astype("datetime64[s]").astype(np.int64)


class CampaignCache:
    def __init__(self, source: Source, gate: AbstractContextManager | None,
                 budget_bytes: int, max_campaign_events: int = 1_000_000) -> None:
        self._source = source
        self._gate = gate or nullcontext()
        self.budget_bytes = budget_bytes
        self.max_campaign_events = max_campaign_events
        self._lock = threading.Lock()
        self._batch_lock = threading.Lock()  # held while a batch is appended
        self._entries: OrderedDict[str, CampaignEvents] = OrderedDict()
        self._strings = {name: Interner() for name in STRING_COLUMNS}
        self._too_big: set[str] = set()
        self._bytes = 0
        self._generation = 0
        self.active = False
        # Every campaign stored is held: new campaigns are added as they arrive, and
        # questions about all campaigns (or unknown ones) are answered here too.
        self.complete = False
        self.hits = 0
        self.misses = 0
        self._requests: queue.Queue[str | None] = queue.Queue()
        self._pending: set[str] = set()
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._load_loop, name="campaign-cache",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._requests.put(None)
            self._thread.join(timeout=10)

    def reset(self, active: bool) -> None:
        """Forget everything; serve again (and warm up) only if `active`."""
        with self._lock:
            self._forget()
            self._too_big.clear()
            self.active = active
            if active:
                self._requests.put(WARM_UP)
        log.info("serving cache cleared (%s)", "active" if active else "inactive")

    def replayed(self, source: str) -> None:
        """After a replay's swap: a raw replay rebuilt only rollups (the events the cache
        copies are unchanged); a topic replay rebuilt the raw table too."""
        if source != "raw":
            self.reset(self.active)

    def describe(self) -> dict[str, object]:
        with self._lock:
            return {"active": self.active, "complete": self.complete,
                    "campaigns": len(self._entries),
                    "events": sum(e.size for e in self._entries.values()),
                    "strings": self._string_count(),
                    "bytes": self._bytes + self._string_bytes(),
                    "budget_bytes": self.budget_bytes,
                    "hits": self.hits, "misses": self.misses}

    # -- reads -----------------------------------------------------------------------
    def _entry(self, campaign_id: str) -> CampaignEvents | None:
        """The campaign's events (caller holds the lock), or None and a load is queued."""
        if not self.active:
            return None
        entry = self._entries.get(campaign_id)
        if entry is None and self.complete:
            self.hits += 1
            return EMPTY  # nothing stored for it
        if entry is None:
            self.misses += 1
            self._request(campaign_id)
            return None
        self.hits += 1
        self._entries.move_to_end(campaign_id)
        return entry

    def stats(self, campaign_id: str, start: int, end: int) -> tuple[list[tuple], int] | None:
        """campaign_stats rows for one campaign (none when no event falls in the range),
        and how many events were read; None when the campaign is not cached."""
        with self._lock:
            entry = self._entry(campaign_id)
            if entry is None:
                return None
            row, read = _stats_row(campaign_id, entry, start, end)
        return ([row] if row else []), read

    def all_stats(self, start: int, end: int) -> tuple[list[tuple], int] | None:
        """campaign_stats rows for every campaign, newest first, when the cache holds every
        campaign stored (see `_check_complete`); else None."""
        with self._batch_lock, self._lock:  # never half of a batch
            if not (self.active and self.complete):
                return None
            self.hits += 1
            rows, read = [], 0
            for campaign_id, entry in self._entries.items():
                row, events = _stats_row(campaign_id, entry, start, end)
                read += events
                if row:
                    rows.append(row)
        rows.sort(key=lambda row: row[0])
        rows.sort(key=lambda row: row[-2], reverse=True)  # stable: campaign_id breaks ties
        return rows, read

    def timeline(self, campaign_id: str, start: int, end: int,
                 granularity: str) -> tuple[list[tuple], int] | None:
        """campaign_timeline rows for the buckets that have events, in order, and how many
        events were read; None when the campaign is not cached."""
        with self._lock:
            entry = self._entry(campaign_id)
            if entry is None:
                return None
            ts, kind, _, _, _, rid = entry.window(start, end)
            if not len(ts):
                return [], 0
            buckets = bucket_starts(ts, granularity)
            change = np.empty(len(buckets), dtype=bool)
            change[0] = True
            np.not_equal(buckets[1:], buckets[:-1], out=change[1:])
            index = np.cumsum(change) - 1
            starts = buckets[change]
            width = KIND_SLOTS
            counts = np.bincount(index * width + kind, minlength=len(starts) * width)
            counts = counts.reshape(len(starts), width)
            uniques = []
            span = len(entry.recipients)
            for code in (OPEN, CLICK):
                mask = kind == code
                pairs = index[mask] * span + rid[mask]
                if len(starts) * span <= 4_000_000:  # a presence table beats sorting
                    seen = np.bincount(pairs, minlength=len(starts) * span)
                    uniques.append(np.count_nonzero(seen.reshape(len(starts), span), axis=1))
                else:
                    uniques.append(np.bincount(np.unique(pairs) // span, minlength=len(starts)))
        return [(_utc(b), *c, o, k) for b, c, o, k in zip(
            starts.tolist(), counts[:, 1:].tolist(), uniques[0].tolist(), uniques[1].tolist(),
            strict=True)], len(ts)

    def recipients(self, campaign_id: str, start: int, end: int, kind: int,
                   recipient_id: str, recipient_email: str, limit: int,
                   offset: int) -> tuple[list[tuple], int] | None:
        """recipient_activity rows (with the `_total` column, as the SQL returns them) for
        one campaign, and how many events were read; None when it is not cached."""
        with self._lock:
            entry = self._entry(campaign_id)
            if entry is None:
                return None
            ts, kinds, recipients, emails, links, local = entry.window(start, end)
            read = len(ts)
            keep = None
            for wanted, values, interner in (
                    (recipient_id, recipients, self._strings["recipient"]),
                    (recipient_email, emails, self._strings["email"])):
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
            names = self._strings["recipient"].values
            name_of = entry.recipients
            chosen = present[candidates]
            keyed = sorted(zip((-last[candidates]).tolist(),
                               [names[n] for n in name_of[chosen].tolist()],
                               chosen.tolist(), strict=True))
            page = [r for _, _, r in keyed[offset:offset + limit]]
            # Distinct clicked links of the page's recipients.
            link_values = self._strings["link"].values
            page_index = np.array(page, dtype=np.int64)
            on_page = np.zeros(size, dtype=bool)
            on_page[page_index] = True
            is_link = (kinds == CLICK) & (links != 0) & on_page[local]
            link_sets: dict[int, set[str]] = {}
            for r, link in zip(local[is_link].tolist(), links[is_link].tolist(), strict=True):
                link_sets.setdefault(r, set()).add(link_values[link])
            clicked = {r: sorted(links_of) for r, links_of in link_sets.items()}
            email_values = self._strings["email"].values
            page_emails = emails[last_at[page_index]].tolist()  # argMax(email, timestamp)
            page_keys = last_key[page_index]
            times = _texts(np.concatenate([ts[first_at[page_index]], page_keys // KIND_SLOTS]))
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

    # -- writes (worker's writer thread, under the gate) -------------------------------
    def batch_stored(self, batch: Batch) -> None:  # rollup.worker.StoreListener
        self.add_events(batch.event_columns)

    def store_reset(self, sole_writer: bool) -> None:  # rollup.worker.StoreListener
        self.reset(active=sole_writer and self.budget_bytes > 0)

    def add_events(self, columns: dict[str, list]) -> None:
        """Append a just-inserted batch's rows to the campaigns held (and, when complete,
        start holding campaigns seen for the first time). Vectorized over the batch:
        one pass per column, then one slice per campaign."""
        if not self.active or not (self._entries or self.complete):
            return
        with self._batch_lock:
            self._add_events(columns)

    def _add_events(self, columns: dict[str, list]) -> None:
        with self._lock:
            entries = self._entries
            positions: dict[str, int] = {}
            codes = np.array([positions.setdefault(c, len(positions))
                              for c in columns["campaign_id"]], dtype=np.int64)
            held = []
            for campaign_id in positions:
                if campaign_id not in entries and self.complete:
                    entry = entries[campaign_id] = CampaignEvents.empty()  # a new campaign
                    self._bytes += entry.nbytes
                held.append(campaign_id in entries)
            if not any(held):
                return
            rows = np.flatnonzero(np.array(held)[codes])

            def taken(column: str) -> list:  # only rows of held campaigns (strings interned)
                values = columns[column]
                return values if len(rows) == len(codes) else [values[i] for i in rows.tolist()]

            order = np.argsort(codes[rows], kind="stable")
            values = [np.array(taken("timestamp"), dtype=np.uint32)[order],
                      np.array([KINDS[t] for t in taken("event_type")], dtype=np.uint8)[order]]
            for name, column in (("recipient", "recipient_id"), ("email", "recipient_email"),
                                 ("link", "link_url")):
                number = self._strings[name].number
                values.append(np.array([number(v) for v in taken(column)],
                                       dtype=np.uint32)[order])
            sorted_codes = codes[rows][order]
            generation = self._generation
        starts = np.flatnonzero(np.diff(sorted_codes, prepend=-1)).tolist()
        ends = [*starts[1:], len(sorted_codes)]
        names = list(positions)
        campaigns = [names[code] for code in sorted_codes[starts].tolist()]
        # Per campaign under the lock, releasing it every few campaigns so that queries
        # are not held up for the whole batch (each campaign still changes atomically;
        # all_stats waits for whole batches).
        for first in range(0, len(starts), APPEND_GROUP):
            with self._lock:
                if generation != self._generation:
                    return  # cleared meanwhile
                for campaign_id, start, end in zip(campaigns[first:first + APPEND_GROUP],
                                                   starts[first:first + APPEND_GROUP],
                                                   ends[first:first + APPEND_GROUP],
                                                   strict=True):
                    entry = entries.get(campaign_id)
                    if entry is None:
                        continue
                    before = entry.nbytes
                    entry.append([v[start:end] for v in values])
                    self._bytes += entry.nbytes - before
                    if entry.size > self.max_campaign_events:
                        self._drop(campaign_id)
                        self._too_big.add(campaign_id)
        with self._lock:
            self._evict()

    def _string_count(self) -> int:
        return sum(len(interner.values) for interner in self._strings.values())

    def _string_bytes(self) -> int:
        return sum(interner.nbytes for interner in self._strings.values())

    def _drop(self, campaign_id: str) -> None:
        self.complete = False
        entry = self._entries.pop(campaign_id)
        self._bytes -= entry.nbytes

    def _forget(self) -> None:
        """Drop every campaign and string (caller holds the lock); loads and appends in
        flight see the new generation and give up."""
        self._entries.clear()
        self._strings = {name: Interner() for name in STRING_COLUMNS}
        self._bytes = 0
        self._generation += 1
        self.complete = False

    def _evict(self) -> None:
        strings = self._string_bytes()
        if strings > self.budget_bytes // 2:
            # Interned strings are shared and never dropped one by one: start afresh.
            self._forget()
            return
        while self._bytes + strings > self.budget_bytes and self._entries:
            self._drop(next(iter(self._entries)))

    # -- loads (own thread) ----------------------------------------------------------
    def _request(self, campaign_id: str) -> None:
        """Queue a load (caller holds the lock)."""
        if campaign_id not in self._too_big and campaign_id not in self._pending:
            self._pending.add(campaign_id)
            self._requests.put(campaign_id)

    def warm_up(self) -> None:
        """Load the most recently active campaigns that fit in the budget, in chunks."""
        started = time.perf_counter()
        budget_events = self.budget_bytes * 4 // 5 // BYTES_PER_EVENT
        chunk: list[str] = []
        chunk_events = total = 0
        for campaign_id, events in self._source.recent_campaigns(100_000):
            if events > self.max_campaign_events:
                continue
            if total + events > budget_events:
                break
            total += events
            chunk.append(campaign_id)
            chunk_events += events
            if chunk_events >= LOAD_CHUNK_EVENTS:
                self.load(chunk)
                chunk, chunk_events = [], 0
                with self._lock:  # the estimate above ignores strings: check real bytes
                    if self._bytes + self._string_bytes() > self.budget_bytes * 4 // 5:
                        break
        if chunk:
            self.load(chunk)
        self._check_complete()
        log.info("serving cache warmed up: %s in %.1f s", self.describe(),
                 time.perf_counter() - started)

    def _check_complete(self) -> None:
        """Mark the cache complete if it holds every campaign stored (asked under the
        gate, so no batch can add a campaign in between)."""
        with self._gate:
            with self._lock:
                if not self.active or self._too_big:
                    return
                generation = self._generation
            stored = self._source.all_campaigns()
            with self._lock:
                if generation == self._generation and all(
                        campaign_id in self._entries for campaign_id in stored):
                    self.complete = True

    def _load_loop(self) -> None:
        carried: str | None = None
        while True:
            item = carried if carried is not None else self._requests.get()
            carried = None
            taken = [item]  # each needs a task_done (wait_idle)
            try:
                if item is None:
                    return
                if item == WARM_UP:
                    self.warm_up()
                    continue
                while len(taken) < MISS_LOAD_CAMPAIGNS:  # one query for queued misses
                    try:
                        more = self._requests.get_nowait()
                    except queue.Empty:
                        break
                    if more is None or more == WARM_UP:
                        carried = more
                        break
                    taken.append(more)
                self.load(taken)
            except Exception:  # noqa: BLE001 - the cache is an accelerator: SQL still answers
                log.exception("loading the serving cache failed")
            finally:
                with self._lock:
                    self._pending.difference_update(taken)
                for _ in taken:
                    self._requests.task_done()

    def wait_idle(self) -> None:
        """Until every queued load and warm-up is done (tests, benchmarks)."""
        self._requests.join()

    def load(self, campaign_ids: Sequence[str]) -> int:
        """Load these campaigns' events from ClickHouse; returns events loaded."""
        with self._gate:  # no batch lands between the snapshot and its registration
            with self._lock:
                if not self.active:
                    return 0
                generation = self._generation
                wanted = [c for c in dict.fromkeys(campaign_ids) if c not in self._entries]
            if not wanted:
                return 0
            started = time.perf_counter()
            rows = np.frombuffer(self._source.campaign_events(wanted), dtype=ROW)
            pairs: dict[str, list[tuple[int, str]]] = {name: [] for name in STRING_COLUMNS}
            for column, hash_, value in self._source.campaign_strings(wanted):
                pairs[column].append((hash_, value))
            bounds = np.searchsorted(rows["campaign"], np.arange(1, len(wanted) + 2))
            with self._lock:
                if generation != self._generation or not self.active:
                    return 0
                numbers = {name: self._strings[name].join(rows[name], pairs[name])
                           for name in STRING_COLUMNS}
                for position, campaign_id in enumerate(wanted):
                    a, b = bounds[position], bounds[position + 1]
                    if b - a > self.max_campaign_events:
                        self._too_big.add(campaign_id)
                        continue
                    entry = CampaignEvents([rows["ts"][a:b], rows["kind"][a:b],
                                            *(numbers[name][a:b] for name in STRING_COLUMNS)])
                    if entry.nbytes > self.budget_bytes // 2:  # would evict most others
                        self._too_big.add(campaign_id)
                        continue
                    self._entries[campaign_id] = entry
                    self._bytes += entry.nbytes
                self._evict()
        log.debug("cached %d campaigns (%d events) in %.0f ms", len(wanted), len(rows),
                  (time.perf_counter() - started) * 1000)
        return len(rows)


class ClickHouseSource:
    """The cache's reads, through the API's query pool."""

    def __init__(self, pool: QueryPool) -> None:
        self.pool = pool

    def campaign_events(self, campaign_ids: Sequence[str]) -> bytes:
        with self.pool.client() as client:
            return client.raw_query(load_sql(SQL_DIR / "campaign_events.sql"),
                                    parameters={"campaign_ids": list(campaign_ids)},
                                    fmt="RowBinary")

    def campaign_strings(self, campaign_ids: Sequence[str]) -> list[tuple[str, int, str]]:
        with self.pool.client() as client:
            result = client.query(load_sql(SQL_DIR / "campaign_strings.sql"),
                                  parameters={"campaign_ids": list(campaign_ids)})
        return result.result_rows

    def recent_campaigns(self, limit: int) -> list[tuple[str, int]]:
        with self.pool.client() as client:
            result = client.query(load_sql(SQL_DIR / "recent_campaigns.sql"),
                                  parameters={"limit": limit})
        return [(campaign_id, int(events)) for campaign_id, events in result.result_rows]

    def all_campaigns(self) -> list[str]:
        with self.pool.client() as client:
            result = client.query(load_sql(SQL_DIR / "all_campaigns.sql"))
        return [row[0] for row in result.result_rows]
