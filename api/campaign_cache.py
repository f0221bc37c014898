"""The serving cache: an exact in-memory copy of hot campaigns' events, so that
campaign_stats and campaign_timeline for one campaign answer in well under a millisecond.

Why: one ClickHouse query costs 2-20 ms here however little it reads (planning
dominates, see docs/benchmarks.md), so no SQL plan meets the latency and throughput
targets. The cache keeps, per campaign, its events' epoch second, type code and a dense
recipient number (from the MD5 of recipient_id, 128 bits like uniqExact's own
digests), sorted by time: any second-precision range is two binary searches and a few
vectorized counts. About 9 bytes per event.

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

import hashlib
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
from ingest.contract import EVENT_TYPES
from rollup.batch import Batch
from rollup.clickhouse import load_sql

log = logging.getLogger("campaigns.cache")

SQL_DIR = Path(__file__).resolve().parent / "sql"

KINDS = {name: code for code, name in enumerate(EVENT_TYPES, start=1)}  # 0 = unused
OPEN, CLICK = KINDS["open"], KINDS["click"]
ROW = np.dtype([("campaign", "<u4"), ("ts", "<u4"), ("kind", "u1"), ("recipient", "S16")])
COUNT_COLUMNS = ("sends", "delivered", "opens", "clicks", "bounces", "complaints",
                 "unsubscribes")
WEEK_OFFSET = 4 * 86400  # 1970-01-01 was a Thursday; weeks start on Monday 1970-01-05

WARM_UP = "\x00warm-up"  # a request for the newest campaigns, not a campaign id
BYTES_PER_EVENT = 12  # estimate for warm-up: 9 bytes + recipient numbers of opens/clicks
LOAD_CHUNK_EVENTS = 500_000  # per load: bounds how long a load pauses the worker


class Source(Protocol):
    def campaign_events(self, campaign_ids: Sequence[str]) -> bytes:
        """RowBinary rows of ROW for these campaigns (`campaign` = 1-based position)."""

    def recent_campaigns(self, limit: int) -> list[tuple[str, int]]:
        """(campaign_id, events), most recently active first."""


def recipient_digest(recipient_id: str) -> bytes:
    return hashlib.md5(recipient_id.encode()).digest()  # noqa: S324 - a digest, not security


class CampaignEvents:
    """One campaign's events in growable arrays, kept sorted by time lazily."""

    __slots__ = ("ts", "kind", "rid", "size", "ordered", "keys", "key_ids")

    def __init__(self, ts: np.ndarray, kind: np.ndarray, digests: np.ndarray) -> None:
        order = np.argsort(ts, kind="stable")
        self.ts = ts[order].astype(np.uint32)
        self.kind = kind[order].astype(np.uint8)
        self.rid = np.zeros(len(ts), dtype=np.uint32)
        self.size = len(ts)
        self.ordered = True
        # Recipients of opens and clicks: sorted digests and their dense numbers.
        self.keys = np.empty(0, dtype="S16")
        self.key_ids = np.empty(0, dtype=np.uint32)
        counted = (self.kind == OPEN) | (self.kind == CLICK)
        self.rid[counted] = self._numbers(digests[order][counted])

    @property
    def nbytes(self) -> int:
        return (self.ts.nbytes + self.kind.nbytes + self.rid.nbytes + self.keys.nbytes
                + self.key_ids.nbytes)

    def _numbers(self, digests: np.ndarray) -> np.ndarray:
        """Dense recipient numbers for these digests, numbering new ones."""
        numbers = np.empty(len(digests), dtype=np.uint32)
        if not len(digests):
            return numbers
        known = np.zeros(len(digests), dtype=bool)
        if len(self.keys):
            at = np.minimum(np.searchsorted(self.keys, digests), len(self.keys) - 1)
            known = self.keys[at] == digests
            numbers[known] = self.key_ids[at[known]]
        if not known.all():
            new, inverse = np.unique(digests[~known], return_inverse=True)
            first = len(self.key_ids)
            new_ids = np.arange(first, first + len(new), dtype=np.uint32)
            numbers[~known] = new_ids[inverse]
            where = np.searchsorted(self.keys, new)
            self.keys = np.insert(self.keys, where, new)
            self.key_ids = np.insert(self.key_ids, where, new_ids)
        return numbers

    def append(self, ts: np.ndarray, kind: np.ndarray, digests: list[bytes | None]) -> None:
        count = len(ts)
        rid = np.zeros(count, dtype=np.uint32)
        counted = [i for i, d in enumerate(digests) if d is not None]
        if counted:
            rid[counted] = self._numbers(np.array([digests[i] for i in counted], dtype="S16"))
        end = self.size + count
        if end > len(self.ts):
            capacity = max(end, 2 * len(self.ts), 64)
            for name in ("ts", "kind", "rid"):
                grown = np.empty(capacity, dtype=getattr(self, name).dtype)
                grown[:self.size] = getattr(self, name)[:self.size]
                setattr(self, name, grown)
        if self.ordered and count:
            in_order = bool(np.all(ts[1:] >= ts[:-1]))
            self.ordered = in_order and (self.size == 0 or ts[0] >= self.ts[self.size - 1])
        self.ts[self.size:end] = ts
        self.kind[self.size:end] = kind
        self.rid[self.size:end] = rid
        self.size = end

    def window(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Events with start <= ts <= end, in time order."""
        if not self.ordered:  # a late event arrived: sort once, on the next read
            n = self.size
            order = np.argsort(self.ts[:n], kind="stable")
            self.ts[:n] = self.ts[:n][order]
            self.kind[:n] = self.kind[:n][order]
            self.rid[:n] = self.rid[:n][order]
            self.ordered = True
        ts = self.ts[:self.size]
        lo = int(np.searchsorted(ts, start, side="left"))
        hi = int(np.searchsorted(ts, end, side="right"))
        return ts[lo:hi], self.kind[lo:hi], self.rid[lo:hi]


EPOCH = datetime(1970, 1, 1)


def _utc(epoch: int) -> datetime:
    """Naive UTC, as the SQL path returns DateTime('UTC') values."""
    return EPOCH + timedelta(seconds=epoch)


def _distinct(numbers: np.ndarray) -> int:
    return int(np.unique(numbers).size) if len(numbers) else 0


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
        self._entries: OrderedDict[str, CampaignEvents] = OrderedDict()
        self._too_big: set[str] = set()
        self._bytes = 0
        self._generation = 0
        self.active = False
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
            self._entries.clear()
            self._too_big.clear()
            self._bytes = 0
            self._generation += 1
            self.active = active
            if active:
                self._requests.put(WARM_UP)
        log.info("serving cache cleared (%s)", "active" if active else "inactive")

    def clear(self) -> None:
        self.reset(self.active)

    def describe(self) -> dict[str, object]:
        with self._lock:
            return {"active": self.active, "campaigns": len(self._entries),
                    "events": sum(e.size for e in self._entries.values()),
                    "bytes": self._bytes, "budget_bytes": self.budget_bytes,
                    "hits": self.hits, "misses": self.misses}

    # -- reads -----------------------------------------------------------------------
    def _entry(self, campaign_id: str) -> CampaignEvents | None:
        """The campaign's events (caller holds the lock), or None and a load is queued."""
        if not self.active:
            return None
        entry = self._entries.get(campaign_id)
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
            ts, kind, rid = entry.window(start, end)
            if not len(ts):
                return [], 0
            counts = np.bincount(kind, minlength=len(KINDS) + 1)
            unique_opens = _distinct(rid[kind == OPEN])
            unique_clicks = _distinct(rid[kind == CLICK])
            first, last = int(ts[0]), int(ts[-1])
        return [(campaign_id, *(int(c) for c in counts[1:]), unique_opens, unique_clicks,
                 _utc(first), _utc(last))], len(ts)

    def timeline(self, campaign_id: str, start: int, end: int,
                 granularity: str) -> tuple[list[tuple], int] | None:
        """campaign_timeline rows for the buckets that have events, in order, and how many
        events were read; None when the campaign is not cached."""
        with self._lock:
            entry = self._entry(campaign_id)
            if entry is None:
                return None
            ts, kind, rid = entry.window(start, end)
            if not len(ts):
                return [], 0
            buckets = bucket_starts(ts, granularity)
            change = np.empty(len(buckets), dtype=bool)
            change[0] = True
            np.not_equal(buckets[1:], buckets[:-1], out=change[1:])
            index = np.cumsum(change) - 1
            starts = buckets[change]
            width = len(KINDS) + 1
            counts = np.bincount(index * width + kind, minlength=len(starts) * width)
            counts = counts.reshape(len(starts), width)
            uniques = []
            span = int(rid.max()) + 1
            for code in (OPEN, CLICK):
                mask = kind == code
                pairs = np.unique(index[mask] * span + rid[mask])
                uniques.append(np.bincount(pairs // span, minlength=len(starts)))
        return [(_utc(int(b)), *(int(c) for c in counts[i, 1:]), int(uniques[0][i]),
                 int(uniques[1][i])) for i, b in enumerate(starts)], len(ts)

    # -- writes (worker's writer thread, under the gate) -------------------------------
    def batch_stored(self, batch: Batch) -> None:  # rollup.worker.StoreListener
        self.add_events(batch.event_columns)

    def store_reset(self, sole_writer: bool) -> None:  # rollup.worker.StoreListener
        self.reset(active=sole_writer and self.budget_bytes > 0)

    def add_events(self, columns: dict[str, list]) -> None:
        """Append a just-inserted batch's rows to the campaigns held."""
        if not self.active or not self._entries:
            return
        campaign_ids = columns["campaign_id"]
        timestamps = columns["timestamp"]
        types = columns["event_type"]
        recipients = columns["recipient_id"]
        with self._lock:
            entries = self._entries
            rows: dict[str, list[int]] = {}
            for i, campaign_id in enumerate(campaign_ids):
                if campaign_id in entries:
                    group = rows.get(campaign_id)
                    if group is None:
                        rows[campaign_id] = [i]
                    else:
                        group.append(i)
            for campaign_id, indexes in rows.items():
                entry = entries[campaign_id]
                before = entry.nbytes
                kinds = [KINDS[types[i]] for i in indexes]
                digests = [recipient_digest(recipients[i]) if k == OPEN or k == CLICK else None
                           for i, k in zip(indexes, kinds, strict=True)]
                entry.append(np.array([timestamps[i] for i in indexes], dtype=np.uint32),
                             np.array(kinds, dtype=np.uint8), digests)
                self._bytes += entry.nbytes - before
                if entry.size > self.max_campaign_events:
                    self._drop(campaign_id)
                    self._too_big.add(campaign_id)
            self._evict()

    def _drop(self, campaign_id: str) -> None:
        entry = self._entries.pop(campaign_id)
        self._bytes -= entry.nbytes

    def _evict(self) -> None:
        while self._bytes > self.budget_bytes and self._entries:
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
        if chunk:
            self.load(chunk)
        log.info("serving cache warmed up: %s in %.1f s", self.describe(),
                 time.perf_counter() - started)

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
                while len(taken) < 200:  # one query for the misses queued meanwhile
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
            bounds = np.searchsorted(rows["campaign"], np.arange(1, len(wanted) + 2))
            built = {}
            for position, campaign_id in enumerate(wanted):
                part = rows[bounds[position]:bounds[position + 1]]
                if len(part) > self.max_campaign_events:
                    built[campaign_id] = None
                    continue
                built[campaign_id] = CampaignEvents(part["ts"], part["kind"], part["recipient"])
            with self._lock:
                if generation != self._generation or not self.active:
                    return 0
                for campaign_id, entry in built.items():
                    if entry is None:
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

    def recent_campaigns(self, limit: int) -> list[tuple[str, int]]:
        with self.pool.client() as client:
            result = client.query(load_sql(SQL_DIR / "recent_campaigns.sql"),
                                  parameters={"limit": limit})
        return [(campaign_id, int(events)) for campaign_id, events in result.result_rows]
