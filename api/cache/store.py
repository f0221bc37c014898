"""The serving cache's store: which campaigns are held, within a memory budget (LRU),
loaded in the background and fed by the worker's stored batches. See api/cache/__init__.py
for why it is exact."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext

import numpy as np

from api.cache.events import (
    EMPTY,
    KINDS,
    STRING_COLUMNS,
    BatchTotals,
    CampaignEvents,
    HeldCampaign,
    Interner,
)
from api.cache.source import ROW, Source
from api.cache.state import CacheState, check
from api.cache.totals import AllCampaigns, TotalsTable
from rollup.batch import Batch

log = logging.getLogger("campaigns.cache")


WARM_UP = "\x00warm-up"  # a request for the newest campaigns, not a campaign id
BYTES_PER_EVENT = 25  # estimate for warm-up: 22 bytes + a share of the interned strings
APPEND_GROUP = 32  # campaigns appended per hold of the lock
MISS_LOAD_CAMPAIGNS = 16  # campaigns per background load of misses (bounds a gate hold)
LOAD_CHUNK_EVENTS = 100_000  # per load: bounds how long a load pauses the worker (~0.2 s)


class CampaignCache:
    def __init__(self, source: Source, gate: AbstractContextManager | None,
                 budget_bytes: int, max_campaign_events: int = 1_000_000) -> None:
        self._source = source
        self._gate: AbstractContextManager = gate or nullcontext()
        # The feed (one per worker) that last reported owning every partition; only its
        # batches are appended, and loads run under its worker's gate.
        self._own_feed = StoreFeed(self, self._gate)
        self._owner: StoreFeed | None = None
        self.budget_bytes = budget_bytes
        self.max_campaign_events = max_campaign_events
        self._lock = threading.Lock()
        self._batch_lock = threading.Lock()  # held while a batch is appended
        self._entries: OrderedDict[str, CampaignEvents] = OrderedDict()
        self._strings = {name: Interner() for name in STRING_COLUMNS}
        self._totals = TotalsTable()  # every held campaign's running totals (all_stats)
        self._too_big: set[str] = set()
        self._bytes = 0
        self._generation = 0
        self.state = CacheState.INACTIVE  # api/cache/state.py; changed only by _enter
        self.hits = 0
        self.misses = 0
        self._requests: queue.Queue[str | None] = queue.Queue()
        self._pending: set[str] = set()
        self._thread: threading.Thread | None = None

    # -- lifecycle (api/cache/state.py) ------------------------------------------------
    @property
    def active(self) -> bool:
        """Serving (any state but INACTIVE)."""
        return self.state.serving

    @property
    def complete(self) -> bool:
        """Every campaign stored is held: new campaigns are added as they arrive, and
        questions about all campaigns (or unknown ones) are answered here too."""
        return self.state is CacheState.COMPLETE

    def _enter(self, state: CacheState) -> None:
        """The one place the lifecycle changes (caller holds the lock)."""
        check(self.state, state)
        if state is not self.state:
            log.info("serving cache: %s -> %s", self.state.value, state.value)
        self.state = state

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
            self._clear(active)
        log.info("serving cache cleared (%s)", "active" if active else "inactive")

    def _clear(self, active: bool) -> None:
        self._forget()
        self._too_big.clear()
        self._enter(CacheState.WARMING if active else CacheState.INACTIVE)
        if active:
            self._requests.put(WARM_UP)

    def replayed(self, source: str) -> None:
        """After a replay's swap: a raw replay rebuilt only rollups (the events the cache
        copies are unchanged); a topic replay rebuilt the raw table too."""
        if source != "raw":
            self.reset(self.active)

    def describe(self) -> dict[str, object]:
        with self._lock:
            return {"state": self.state.value, "active": self.active,
                    "complete": self.complete,
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

    @contextmanager
    def reading(self, campaign_id: str) -> Iterator[HeldCampaign | None]:
        """One campaign's events and the interned strings, consistent while the block runs
        (the lock is held: keep it short); None when the campaign is not held (a load is
        queued) or the cache is inactive."""
        with self._lock:
            entry = self._entry(campaign_id)
            yield None if entry is None else HeldCampaign(campaign_id, entry, self._strings)

    @contextmanager
    def reading_totals(self) -> Iterator[AllCampaigns | None]:
        """Every campaign's running totals (and events), only when every campaign stored
        is held (see `_check_complete`), never half of a batch; else None."""
        with self._batch_lock, self._lock:
            if not (self.active and self.complete):
                yield None
                return
            self.hits += 1
            yield AllCampaigns(self._totals, self._entries, self._strings)

    # -- writes (worker's writer thread, under the gate) -------------------------------
    def feed(self, gate: AbstractContextManager) -> StoreFeed:
        """A listener for one worker of several in this process (rollup/group.py), made
        for that worker's gate."""
        return StoreFeed(self, gate)

    def batch_stored(self, batch: Batch) -> None:  # rollup.worker.StoreListener
        self._own_feed.batch_stored(batch)

    def store_reset(self, sole_writer: bool) -> None:  # rollup.worker.StoreListener
        self._own_feed.store_reset(sole_writer)

    def _stored_by(self, feed: StoreFeed, batch: Batch) -> None:
        if feed is not self._owner:
            # Only the sole writer stores while the cache serves; anything else means the
            # store changed behind its back (e.g. a worker that was presumed gone).
            if self.active:
                log.warning("a batch from a worker that does not own every partition: "
                            "standing down")
                self.reset(active=False)
            return
        self.add_events(batch.event_columns)

    def _reset_by(self, feed: StoreFeed, sole_writer: bool) -> None:
        """Partitions moved or the store changed unseen: serve again only if `feed`'s
        worker now owns every partition (the cache stands down while they are split)."""
        active = sole_writer and self.budget_bytes > 0
        with self._lock:  # one step: two workers' resets never interleave half-way
            self._owner = feed if sole_writer else None
            if sole_writer:
                self._gate = feed.gate
            self._clear(active)
        log.info("serving cache cleared (%s)", "active" if active else "inactive")

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
                    self._totals.put(campaign_id, entry.totals())
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
            values.append(np.array(taken("machine"), dtype=np.uint8)[order])
            sorted_codes = codes[rows][order]
            generation = self._generation
        starts = np.flatnonzero(np.diff(sorted_codes, prepend=-1)).tolist()
        ends = [*starts[1:], len(sorted_codes)]
        totals = BatchTotals(values[0], values[1], values[5], starts)  # running totals
        names = list(positions)
        campaigns = [names[code] for code in sorted_codes[starts].tolist()]
        # Per campaign under the lock, releasing it every few campaigns so that queries
        # are not held up for the whole batch (each campaign still changes atomically;
        # all_stats waits for whole batches).
        for first in range(0, len(starts), APPEND_GROUP):
            with self._lock:
                if generation != self._generation:
                    return  # cleared meanwhile
                appended: list[tuple[str, int, np.ndarray | None]] = []
                for part, (campaign_id, start, end) in enumerate(zip(
                        campaigns[first:first + APPEND_GROUP],
                        starts[first:first + APPEND_GROUP], ends[first:first + APPEND_GROUP],
                        strict=True), first):
                    entry = entries.get(campaign_id)
                    if entry is None:
                        continue
                    before = entry.nbytes
                    entry.append([v[start:end] for v in values], totals.flags[start:end]
                                 if totals.engaged[part] else None)
                    self._bytes += entry.nbytes - before
                    if entry.size > self.max_campaign_events:
                        self._drop(campaign_id)
                        self._too_big.add(campaign_id)
                        continue
                    appended.append((campaign_id, part, entry.unique_counts()
                                     if totals.engaged[part] else None))
                self._totals.add(appended, totals)
        with self._lock:
            self._evict()

    def _string_count(self) -> int:
        return sum(len(interner.values) for interner in self._strings.values())

    def _string_bytes(self) -> int:
        return sum(interner.nbytes for interner in self._strings.values())

    def _drop(self, campaign_id: str) -> None:
        self._incomplete()
        entry = self._entries.pop(campaign_id)
        self._totals.remove(campaign_id)
        self._bytes -= entry.nbytes

    def _forget(self) -> None:
        """Drop every campaign and string (caller holds the lock); loads and appends in
        flight see the new generation and give up."""
        self._entries.clear()
        self._strings = {name: Interner() for name in STRING_COLUMNS}
        self._totals.clear()
        self._bytes = 0
        self._generation += 1
        self._incomplete()

    def _incomplete(self) -> None:
        """Not every campaign is held any more (caller holds the lock)."""
        if self.state is CacheState.COMPLETE:
            self._enter(CacheState.PARTIAL)

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
        with self._lock:
            generation = self._generation
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
        with self._lock:  # (a reset meanwhile queued a warm-up of its own)
            if self.state is CacheState.WARMING and generation == self._generation:
                self._enter(CacheState.PARTIAL)
        self._check_complete()
        log.info("serving cache warmed up: %s in %.1f s", self.describe(),
                 time.perf_counter() - started)

    def _check_complete(self) -> None:
        """Mark the cache complete if it holds every campaign stored (asked under the
        gate, so no batch can add a campaign in between)."""
        gate = self._gate
        with gate:
            with self._lock:
                if not self.active or self._too_big or self._gate is not gate:
                    return  # (ownership moved while waiting: the new owner's warm-up asks)
                generation = self._generation
            stored = self._source.all_campaigns()
            with self._lock:
                if generation == self._generation and self.active and all(
                        campaign_id in self._entries for campaign_id in stored):
                    self._enter(CacheState.COMPLETE)

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
        gate = self._gate
        with gate:  # no batch lands between the snapshot and its registration
            with self._lock:
                if not self.active or self._gate is not gate:
                    return 0  # ownership moved while waiting: the new owner's gate counts
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
                                            *(numbers[name][a:b] for name in STRING_COLUMNS),
                                            rows["machine"][a:b]])
                    if entry.nbytes > self.budget_bytes // 2:  # would evict most others
                        self._too_big.add(campaign_id)
                        continue
                    self._entries[campaign_id] = entry
                    self._totals.put(campaign_id, entry.totals())
                    self._bytes += entry.nbytes
                self._evict()
        log.debug("cached %d campaigns (%d events) in %.0f ms", len(wanted), len(rows),
                  (time.perf_counter() - started) * 1000)
        return len(rows)


class StoreFeed:
    """What one worker tells the cache (rollup.writer.StoreListener), tagged with that
    worker, so the cache follows the sole writer and ignores (stands down for) the rest."""

    def __init__(self, cache: CampaignCache, gate: AbstractContextManager) -> None:
        self.cache = cache
        self.gate = gate

    def batch_stored(self, batch: Batch) -> None:
        self.cache._stored_by(self, batch)

    def store_reset(self, sole_writer: bool) -> None:
        self.cache._reset_by(self, sole_writer)
