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


class CampaignEvents:
    """One campaign's events in growable arrays, kept sorted by time lazily. Besides the
    interned numbers, each event carries its recipient's number *within the campaign*
    (dense, 0..recipients-1), so per-recipient answers are bincounts, not sorts."""

    __slots__ = ("columns", "size", "ordered", "local_keys", "local_numbers", "recipients")
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
