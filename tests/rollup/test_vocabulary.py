"""One event vocabulary: the SQL, the serving cache and both validation paths agree with
ingest.contract, so a new event type cannot silently shift a column."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import contract, fastpath, messages
from ingest.contract import COUNT_COLUMNS, EVENT_TYPES, FIELDS, KIND_CODES, MAX_LENGTH

REPO = Path(__file__).resolve().parents[2]
# The product's SQL (bench/ keeps the tutorial's own queries, subsets included, on purpose).
SQL_FILES = sorted(p for folder in ("api", "rollup") for p in (REPO / folder).rglob("*.sql"))
COUNT_IF = re.compile(r"countIf\(event_type = '(\w+)'\) AS (\w+)")
SUM = re.compile(r"sum\((\w+)\) AS (\w+)")


# Files that count every type: the rollups and the pipes shaped like them.
FULL_COUNTS = {"002_campaign_hourly.sql", "003_recipient_rollups.sql", "004_machine_flag.sql",
               "campaign_stats.sql", "campaign_timeline.sql", "recipient_activity_raw.sql"}


def test_count_blocks_in_every_sql_file_follow_the_vocabulary():
    expected = list(zip(EVENT_TYPES, COUNT_COLUMNS, strict=True))
    column_of = dict(expected)
    checked = 0
    for path in SQL_FILES:
        text = path.read_text()
        found = COUNT_IF.findall(text)
        # Everywhere: a type's count carries that type's column name.
        assert all(column_of.get(kind) == column for kind, column in found), path.name
        if path.name in FULL_COUNTS:  # and whole blocks are in the vocabulary's order
            assert found and len(found) % len(expected) == 0, path.name
            for start in range(0, len(found), len(expected)):
                assert found[start:start + len(expected)] == expected, path.name
                checked += 1
        sums = [(a, b) for a, b in SUM.findall(text) if a in COUNT_COLUMNS]
        assert all(a == b for a, b in sums), path.name
        if path.name.removesuffix("_hours.sql") + ".sql" in FULL_COUNTS and sums:
            for start in range(0, len(sums), len(COUNT_COLUMNS)):
                block = sums[start:start + len(COUNT_COLUMNS)]
                assert block == [(c, c) for c in COUNT_COLUMNS], path.name
    assert checked >= 6  # the block really is where the SQL counts events


def test_rollup_tables_have_a_column_per_count():
    schema = (REPO / "rollup" / "schema" / "002_campaign_hourly.sql").read_text()
    for column in COUNT_COLUMNS:
        assert f"`{column}` SimpleAggregateFunction(sum, UInt64)" in schema


def test_cache_type_codes_match_its_sql():
    sql = (REPO / "api" / "cache" / "sql" / "campaign_events.sql").read_text()
    listed = re.search(r"indexOf\(\[(.*?)\], event_type\)", sql, re.S)
    assert listed is not None
    names = [name.strip().strip("'") for name in listed.group(1).split(",")]
    assert names == list(EVENT_TYPES)
    assert [KIND_CODES[name] for name in names] == list(range(1, len(EVENT_TYPES) + 1))


def test_raw_columns_are_the_contract_fields(ch):
    from rollup.sink import RAW_COLUMNS

    assert RAW_COLUMNS == list(FIELDS)
    raw = [row[0] for row in ch.query("DESCRIBE TABLE email_events").result_rows]
    quarantine = [row[0] for row in
                  ch.query("DESCRIBE TABLE email_events_quarantine").result_rows]
    assert raw[:len(FIELDS)] == list(FIELDS)  # the migrated schema, in contract order
    assert quarantine[:len(FIELDS)] == list(FIELDS)


_text = st.one_of(st.text(max_size=12), st.sampled_from(["", " ", "a" * 300, "\x00", "é"]))
_event = st.fixed_dictionaries(
    {"event_id": st.one_of(_text, st.integers(-5, 10**18)),
     "timestamp": st.sampled_from(["2025-05-01 10:00:00", "2025-05-01T10:00:00Z", "bad",
                                   "2025-02-30 10:00:00", "1999-12-31 23:59:59"]),
     "event_type": st.sampled_from([*EVENT_TYPES, "Opened", " bounced ", "nope", ""]),
     "campaign_id": st.one_of(_text, st.integers(0, 99)),
     "recipient_id": _text},
    optional={name: st.one_of(_text, st.sampled_from(["x" * (MAX_LENGTH[name] + 1)]))
              for name in ("email_id", "recipient_email", "link_url", "user_agent")}
    | {"metadata": st.sampled_from(["", "{}", '{"a":1}', "not json", {"k": "v"}])},
)


@settings(max_examples=400, deadline=None)
@given(_event)
def test_fast_and_slow_validation_agree(record):
    payload = orjson.dumps(record)
    fast = fastpath.fast_event(payload, 1_800_000_000)
    slow = messages.validate_slow(payload, 1_800_000_000)
    if fast is not None:  # the fast path only ever answers what the slow path would
        assert fast == slow
    else:
        assert isinstance(slow, contract.Rejection) or slow == messages.validate_message(
            payload, 1_800_000_000)
