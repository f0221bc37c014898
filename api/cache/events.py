"""One campaign's events in the serving cache, and what reading them needs: type codes,
interned strings, time text, bucket starts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

import numpy as np

from ingest.contract import EVENT_TYPES, KIND_CODES, KIND_SLOTS

KINDS = KIND_CODES  # event type -> code (ingest.contract; sql/campaign_events.sql agrees)
OPEN, CLICK = KINDS["open"], KINDS["click"]
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


# Per recipient of a campaign, what it did (api/cache/totals.py: the four unique counts).
OPENED, CLICKED, HUMAN_OPENED, HUMAN_CLICKED = 1, 2, 4, 8
# For each flags byte (0..15), which of the four it counts in: bincount(flags) @ FLAG_BITS.
FLAG_BITS = np.array([[(value >> bit) & 1 for bit in range(4)] for value in range(16)],
                     dtype=np.int64)
TOTALS_WIDTH = KIND_SLOTS + 7  # api/cache/totals.py's row: counts, uniques, times, machine


def event_flags(kind: np.ndarray, machine: np.ndarray) -> np.ndarray:
    """Each event's OPENED/CLICKED (and HUMAN_*) bits."""
    opens, clicks = kind == OPEN, kind == CLICK
    human = machine == 0
    return (opens * OPENED | clicks * CLICKED | (opens & human) * HUMAN_OPENED
            | (clicks & human) * HUMAN_CLICKED).astype(np.uint8)


class BatchTotals:
    """A stored batch's events grouped by campaign (parts, in order): what each part adds
    to its campaign's totals, computed with one numpy pass per column for the whole batch
    (numpy calls per campaign are the writer's main cost when a batch spreads over
    thousands of campaigns); api/cache/totals.py folds them in."""

    def __init__(self, ts: np.ndarray, kind: np.ndarray, machine: np.ndarray,
                 starts: list[int]) -> None:
        parts = len(starts)
        sizes = np.diff(np.append(starts, len(ts)))
        part_kind = np.repeat(np.arange(parts, dtype=np.uint32) * KIND_SLOTS, sizes) + kind
        self.counts = np.bincount(part_kind, minlength=parts * KIND_SLOTS).reshape(
            parts, KIND_SLOTS)[:, 1:]
        machine_counts = np.bincount(part_kind[machine != 0],
                                     minlength=parts * KIND_SLOTS).reshape(parts, KIND_SLOTS)
        self.machine = machine_counts[:, [OPEN, CLICK]]
        bounds = np.asarray(starts, dtype=np.int64)
        self.first = np.minimum.reduceat(ts, bounds) if parts else np.empty(0, np.int64)
        self.last = np.maximum.reduceat(ts, bounds) if parts else np.empty(0, np.int64)
        self.flags = event_flags(kind, machine)  # per event
        self.engaged = (np.bincount(np.repeat(np.arange(parts), sizes)[self.flags != 0],
                                    minlength=parts) > 0).tolist()  # any open or click


def new_totals() -> np.ndarray:
    totals = np.zeros(TOTALS_WIDTH, dtype=np.int64)
    totals[KIND_SLOTS + 1] = np.iinfo(np.int64).max  # no first event yet
    totals[KIND_SLOTS + 2] = -1
    return totals


def windows_totals(windows: Sequence[Window], recipients: Sequence[int]) -> np.ndarray:
    """The totals rows of many campaigns' windows (each time-ordered, with at least one
    event; `recipients`: each campaign's recipient count), in one pass per column over
    all their events, not a dozen numpy calls per campaign. (uint32 throughout: numpy's
    int64 repeat/gather over the same events took several times longer.)"""
    n = len(windows)
    sizes = np.array([len(w.ts) for w in windows], dtype=np.int64)
    ends = np.cumsum(sizes)
    kind = np.concatenate([w.kind for w in windows])
    totals = np.empty((n, TOTALS_WIDTH), dtype=np.int64)
    owner_kind = np.repeat(np.arange(n, dtype=np.uint32) * KIND_SLOTS, sizes) + kind
    counts = np.bincount(owner_kind, minlength=n * KIND_SLOTS).reshape(n, KIND_SLOTS)
    totals[:, :KIND_SLOTS - 1] = counts[:, 1:]
    ts = np.concatenate([w.ts for w in windows])
    totals[:, KIND_SLOTS + 1] = ts[ends - sizes]  # windows are in time order
    totals[:, KIND_SLOTS + 2] = ts[ends - 1]
    machine = np.concatenate([w.machine for w in windows]) != 0
    machine_kind = np.bincount(owner_kind[machine], minlength=n * KIND_SLOTS).reshape(
        n, KIND_SLOTS)
    totals[:, KIND_SLOTS + 3] = machine_kind[:, OPEN]
    totals[:, KIND_SLOTS + 4] = machine_kind[:, CLICK]
    # Unique counts: (campaign, recipient) pairs numbered densely across the windows; each
    # pair's flags, then per campaign how many pairs have each flag.
    first_pair = np.zeros(n, dtype=np.uint32)
    first_pair[1:] = np.cumsum(recipients[:-1])
    pair = np.concatenate([w.local for w in windows]) + np.repeat(first_pair, sizes)
    pairs = int(first_pair[-1]) + int(recipients[-1])
    flags = np.zeros(pairs, dtype=np.uint8)
    opens, clicks = kind == OPEN, kind == CLICK
    for bit, chosen in ((OPENED, opens), (CLICKED, clicks),
                        (HUMAN_OPENED, opens & ~machine), (HUMAN_CLICKED, clicks & ~machine)):
        marked = pair[chosen]
        flags[marked] |= bit  # duplicates set the same bit: no need for ufunc.at
    pair_owner = np.repeat(np.arange(n, dtype=np.uint32) * 16,
                           np.asarray(recipients, dtype=np.int64))
    unique = np.bincount(pair_owner + flags, minlength=n * 16).reshape(n, 16) @ FLAG_BITS
    totals[:, KIND_SLOTS - 1:KIND_SLOTS + 1] = unique[:, :2]
    totals[:, KIND_SLOTS + 5:] = unique[:, 2:]
    return totals


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
        """campaign_stats over all its events, as a totals row (api/cache/totals.py)."""
        n, columns = self.size, self.columns
        totals = new_totals()
        if n:
            totals[:KIND_SLOTS - 1] = np.bincount(columns[1][:n], minlength=KIND_SLOTS)[1:]
            ts = columns[0][:n]
            totals[KIND_SLOTS + 1], totals[KIND_SLOTS + 2] = int(ts.min()), int(ts.max())
            machine = columns[5][:n] != 0
            totals[KIND_SLOTS + 3] = np.count_nonzero(machine & (columns[1][:n] == OPEN))
            totals[KIND_SLOTS + 4] = np.count_nonzero(machine & (columns[1][:n] == CLICK))
        self.put_unique(totals)
        return totals

    def unique_counts(self) -> np.ndarray:
        """unique_opens, unique_clicks, unique_human_opens, unique_human_clicks, from the
        recipients' flags (spare capacity is zeros: it counts in none)."""
        return np.bincount(self.flags, minlength=16) @ FLAG_BITS

    def put_unique(self, totals: np.ndarray) -> None:
        unique = self.unique_counts()
        totals[KIND_SLOTS - 1:KIND_SLOTS + 1] = unique[:2]
        totals[KIND_SLOTS + 5:] = unique[2:]

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


def distinct(local: np.ndarray, recipients: int) -> int:
    """Distinct campaign recipient numbers."""
    return int(np.count_nonzero(np.bincount(local, minlength=recipients))) if len(local) else 0


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
