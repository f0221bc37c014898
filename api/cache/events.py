"""One campaign's events in the serving cache, and what reading them needs: type codes,
interned strings, time text, bucket starts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

import numpy as np

from api.cache.kernel import Grouping, aggregate, bit_counts, event_mask
from ingest.contract import EVENT_TYPES, KIND_CODES, KIND_SLOTS
from rollup.metrics import CAMPAIGN

KINDS = KIND_CODES  # event type -> code (ingest.contract; sql/campaign_events.sql agrees)
CLICK = KINDS["click"]
# argMax(event_type, (timestamp, event_type)): at equal times the greatest type *name* wins.
NAME_RANK = np.zeros(KIND_SLOTS, dtype=np.uint64)
for _rank, _name in enumerate(sorted(EVENT_TYPES)):
    NAME_RANK[KINDS[_name]] = _rank
KIND_BY_RANK = {int(NAME_RANK[code]): name for name, code in KINDS.items()}
STRING_COLUMNS = ("recipient", "email", "link")
WEEK_OFFSET = 4 * 86400  # 1970-01-01 was a Thursday; weeks start on Monday 1970-01-05
BYTES_PER_STRING = 100  # estimate: a Python str's header, its dict slot and list slot
ENTRY_OVERHEAD = 1000  # estimate: a campaign's Python objects (entry, arrays, dict slot)


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


class Window(NamedTuple):
    """One campaign's events within a time range, in time order (parallel arrays)."""

    ts: np.ndarray  # epoch seconds
    kind: np.ndarray  # type code (KINDS)
    recipient: np.ndarray  # interned recipient_id
    email: np.ndarray  # interned recipient_email
    link: np.ndarray  # interned link_url
    machine: np.ndarray  # 1 = machine-generated (the stored effective flag)
    local: np.ndarray  # the recipient's dense number within the campaign


# A running-totals row (api/cache/totals.py) holds campaign_stats' metrics, by name, in
# the declared order (rollup/metrics.py CAMPAIGN); times as epoch seconds.
TOTALS = CAMPAIGN.metrics
TOTALS_COLUMN = {metric.name: i for i, metric in enumerate(TOTALS)}
TOTALS_WIDTH = len(TOTALS)
# Per recipient of a campaign, a flags byte: bit i set when it has an event that the i-th
# distinct-recipients metric counts (for the running unique counts).
UNIQUE_METRICS = tuple(m for m in TOTALS if m.aggregate == "distinct_recipients")
UNIQUE_NAMES = tuple(m.name for m in UNIQUE_METRICS)
SUMMED = tuple(m for m in TOTALS if m.aggregate != "distinct_recipients")  # batches add these


def event_flags(kind: np.ndarray, machine: np.ndarray) -> np.ndarray:
    """Each event's bits, one per distinct-recipients metric that counts it."""
    flags = np.zeros(len(kind), dtype=np.uint8)
    for bit, metric in enumerate(UNIQUE_METRICS):
        mask = event_mask(metric, kind, machine)
        flags |= (mask if mask is not None else True) * np.uint8(1 << bit)
    return flags


def totals_table(values: dict[str, np.ndarray], rows: int) -> np.ndarray:
    """Kernel values (by name) as totals rows."""
    table = np.empty((rows, TOTALS_WIDTH), dtype=np.int64)
    for name, column in TOTALS_COLUMN.items():
        table[:, column] = values[name]
    return table


class BatchTotals:
    """A stored batch's events grouped by campaign (parts, in order): what each part adds
    to its campaign's totals (the kernel, a group per part: one numpy pass per column for
    the whole batch, since numpy calls per campaign are the writer's main cost when a batch
    spreads over thousands of campaigns); api/cache/totals.py folds them in."""

    def __init__(self, ts: np.ndarray, kind: np.ndarray, machine: np.ndarray,
                 starts: list[int]) -> None:
        parts = len(starts)
        sizes = np.diff(np.append(starts, len(ts)))
        group = np.repeat(np.arange(parts, dtype=np.uint32), sizes)
        # (SUMMED has no distinct-recipient metric: no recipient numbers are read)
        self.values = aggregate(SUMMED, kind, machine, group, ts, Grouping(
            parts, group, np.asarray(starts, dtype=np.int64))) if parts else {}
        self.flags = event_flags(kind, machine)  # per event
        self.engaged = (np.bincount(group[self.flags != 0], minlength=parts) > 0).tolist()


def new_totals() -> np.ndarray:
    totals = np.zeros(TOTALS_WIDTH, dtype=np.int64)
    for metric in TOTALS:  # no event yet
        if metric.aggregate == "first_time":
            totals[TOTALS_COLUMN[metric.name]] = np.iinfo(np.int64).max
        elif metric.aggregate == "last_time":
            totals[TOTALS_COLUMN[metric.name]] = -1
    return totals


def windows_totals(windows: Sequence[Window], recipients: Sequence[int]) -> np.ndarray:
    """The totals rows of many campaigns' windows (each time-ordered, with at least one
    event; `recipients`: each campaign's recipient count): the kernel over all their events
    at once, a group per campaign, recipients numbered per (campaign, recipient) pair."""
    # (uint32 throughout: numpy's int64 repeat/gather over the same events took longer)
    n = len(windows)
    sizes = np.array([len(w.ts) for w in windows], dtype=np.int64)
    owner = np.repeat(np.arange(n, dtype=np.uint32), sizes)
    first_pair = np.zeros(n, dtype=np.uint32)
    first_pair[1:] = np.cumsum(recipients[:-1])
    pair = np.concatenate([w.local for w in windows]) + np.repeat(first_pair, sizes)
    pair_owner = np.repeat(np.arange(n, dtype=np.uint32), np.asarray(recipients, np.int64))
    values = aggregate(TOTALS, np.concatenate([w.kind for w in windows]),
                       np.concatenate([w.machine for w in windows]), pair,
                       np.concatenate([w.ts for w in windows]),
                       Grouping(n, owner, np.cumsum(sizes) - sizes, 0, pair, pair_owner))
    return totals_table(values, n)


class CampaignEvents:
    """One campaign's events in growable arrays, kept sorted by time lazily. Besides the
    interned numbers, each event carries its recipient's number *within the campaign*
    (dense, 0..recipients-1), so per-recipient answers are bincounts, not sorts. `flags`
    (per recipient: opened, clicked, as a human or not) follow every append, for the
    running unique counts of api/cache/totals.py."""

    __slots__ = ("columns", "size", "ordered", "local_keys", "local_numbers", "recipients",
                 "flags")
    TYPES = tuple(np.uint8 if name in ("kind", "machine") else np.uint32
                  for name in Window._fields)

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
        self.flags = np.zeros(len(self.recipients), dtype=np.uint8)
        self._flag(event_flags(self.columns[1], self.columns[5]), self.columns[6])

    @classmethod
    def empty(cls) -> CampaignEvents:
        return cls([np.empty(0, dtype=t) for t in cls.TYPES[:-1]])

    @property
    def nbytes(self) -> int:
        # + the Python objects themselves, so even empty campaigns count against the budget
        return (ENTRY_OVERHEAD + sum(c.nbytes for c in self.columns) + self.local_keys.nbytes
                + self.local_numbers.nbytes + self.recipients.nbytes + self.flags.nbytes)

    def totals(self) -> np.ndarray:
        """campaign_stats over all its events, as a totals row (api/cache/totals.py): the
        kernel over its events (in any order: one run), unique counts from the flags."""
        totals = new_totals()
        if self.size:
            n, columns = self.size, self.columns
            values = aggregate(SUMMED, columns[1][:n], columns[5][:n], columns[6][:n],
                               columns[0][:n], Grouping(runs=np.zeros(1, dtype=np.int64)))
            for name, value in values.items():
                totals[TOTALS_COLUMN[name]] = value[0]
        totals[[TOTALS_COLUMN[name] for name in UNIQUE_NAMES]] = self.unique_counts()
        return totals

    def unique_counts(self) -> np.ndarray:
        """The distinct-recipients metrics (UNIQUE_NAMES' order) from the recipients'
        flags (spare capacity is zeros: it counts in none)."""
        counts = bit_counts(UNIQUE_NAMES, self.flags, None, 1)
        return np.array([counts[name][0] for name in UNIQUE_NAMES], dtype=np.int64)

    def _flag(self, bits: np.ndarray | None, local: np.ndarray) -> None:
        """OR each event's bits into its recipient's flags (None: no opens or clicks)."""
        if len(self.flags) < len(self.recipients):  # grow by doubling: appends are frequent
            grown = np.zeros(max(len(self.recipients), 2 * len(self.flags)), dtype=np.uint8)
            grown[:len(self.flags)] = self.flags
            self.flags = grown
        if bits is not None:
            engaged = bits != 0
            np.bitwise_or.at(self.flags, local[engaged], bits[engaged])

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

    def append(self, values: Sequence[np.ndarray], flags: np.ndarray | None | bool = True,
               ) -> None:
        """Append events (ts, kind, recipient, email, link, machine); `flags`: their
        event_flags when the caller has them already, None when none is an open or a
        click, True to compute them here."""
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
        self._flag(event_flags(values[1], values[5]) if flags is True else flags, values[6])

    def window(self, start: int, end: int) -> Window:
        """The events with start <= ts <= end, in time order."""
        n = self.size
        if not self.ordered:  # a late event arrived: sort once, on the next read
            order = np.argsort(self.columns[0][:n], kind="stable")
            for column in self.columns:
                column[:n] = column[:n][order]
            self.ordered = True
        ts = self.columns[0][:n]
        lo = int(np.searchsorted(ts, start, side="left"))
        hi = int(np.searchsorted(ts, end, side="right"))
        return Window(*(column[lo:hi] for column in self.columns))


EMPTY = CampaignEvents.empty()  # what a complete cache answers for an unknown campaign
EPOCH = datetime(1970, 1, 1)


def utc(epoch: int) -> datetime:
    """Naive UTC, as the SQL path returns DateTime('UTC') values."""
    return EPOCH + timedelta(seconds=epoch)


def texts(epochs: np.ndarray) -> list[str]:
    """'YYYY-MM-DD HH:MM:SS' (UTC) for many epochs at once, as the renderers print
    DateTime values."""
    iso = np.datetime_as_string(epochs.astype("datetime64[s]"))
    return [text.replace("T", " ") for text in iso.tolist()]


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


@dataclass(frozen=True)
class HeldCampaign:
    """A campaign as the cache holds it, for reading under the cache's lock."""

    campaign_id: str
    events: CampaignEvents
    strings: dict[str, Interner]
