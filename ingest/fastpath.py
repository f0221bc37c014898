"""The contract's happy path in a few microseconds: msgspec decodes the common shape in C.

Invariant: `fast_row` answers only what `ingest.contract.validate_record` would answer
for the same bytes decoded by orjson; whenever it cannot be sure it returns None and
the caller takes the full path (ingest.messages), which also says why a message is
refused. Every limit and rule here is read from ingest.contract and ingest.timestamps,
and tests/ingest/test_contract_properties.py checks the agreement on generated
payloads, near every limit.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
import orjson

from ingest.contract import EVENT_TYPE_ALIASES, MAX_LENGTH, Event
from ingest.machine import is_machine_user_agent, parse_machine_flag
from ingest.timestamps import MIN_TIMESTAMP, latest_valid, parse_timestamp

# The integers msgspec may hand over. orjson reads integers past 64 bits as floats (which
# the contract refuses as ids) or not at all (past 1.8e308): msgspec would read both, even
# in a member repeated later in the message, whose last value is the one kept.
_Int = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]  # int64: msgspec's limit


class _Wire(msgspec.Struct, forbid_unknown_fields=True):
    """The happy path's shape, decoded in C by msgspec; anything else takes the slow path.

    Every value msgspec reads here is a string, a bool or an int64, which orjson reads
    alike. Hence only the contract's members (msgspec skips an unknown one without
    reading its numbers, so 1e999 there would pass although orjson refuses the message)
    and metadata only as text (an object may hold anything, repeated keys included):
    producers that add members or send metadata as an object take the slow path."""

    event_id: str | _Int
    timestamp: str
    event_type: str
    campaign_id: str | _Int
    recipient_id: str | _Int
    email_id: str | _Int = ""
    recipient_email: str = ""
    link_url: str = ""
    metadata: str = ""
    user_agent: str = ""
    machine: bool | _Int | str = False


_wire_decoder = msgspec.json.Decoder(_Wire)
_MAX_EVENT_ID, _MAX_CAMPAIGN_ID, _MAX_RECIPIENT_ID, _MAX_EMAIL_ID = (
    MAX_LENGTH["event_id"], MAX_LENGTH["campaign_id"], MAX_LENGTH["recipient_id"],
    MAX_LENGTH["email_id"])
_MAX_RECIPIENT_EMAIL, _MAX_LINK_URL, _MAX_METADATA, _MAX_USER_AGENT = (
    MAX_LENGTH["recipient_email"], MAX_LENGTH["link_url"], MAX_LENGTH["metadata"],
    MAX_LENGTH["user_agent"])
_MAX_EVENT_TYPE = MAX_LENGTH["event_type"]


def fast_event(payload: bytes, reference_epoch: int) -> Event | None:
    """The common case as an Event; None means "ask the full path why"."""
    row = fast_row(payload, reference_epoch)
    return None if row is None else tuple.__new__(Event, row)


def fast_row(payload: bytes, reference_epoch: int) -> tuple | None:
    """`fast_event`'s answer as a plain tuple in Event's field order. The worker keeps a
    batch's rows in these: the garbage collector stops tracking a tuple of strings and
    numbers at its first pass, but not a NamedTuple, and 50,000 tracked rows per batch made
    full collections take a third of the worker's time.

    Callers treat an exception as None, so a surprise in a dependency (msgspec, the user
    agent classifier) costs a full validation, never a stopped partition."""
    try:
        wire = _wire_decoder.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    event_id, campaign_id, recipient_id, email_id = (
        wire.event_id, wire.campaign_id, wire.recipient_id, wire.email_id)
    if type(event_id) is not str or type(campaign_id) is not str \
            or type(recipient_id) is not str or type(email_id) is not str:
        if isinstance(event_id, bool) or isinstance(campaign_id, bool) \
                or isinstance(recipient_id, bool) or isinstance(email_id, bool):
            return None
        event_id, campaign_id, recipient_id, email_id = (
            str(event_id), str(campaign_id), str(recipient_id), str(email_id))
    metadata = wire.metadata
    if metadata:
        try:
            orjson.loads(metadata)
        except orjson.JSONDecodeError:
            return None
    event_type = EVENT_TYPE_ALIASES.get(wire.event_type)
    if event_type is None:  # (an exact alias is short: within the type's length limit)
        if len(wire.event_type) > _MAX_EVENT_TYPE:  # padding around an alias is counted
            return None
        event_type = EVENT_TYPE_ALIASES.get(wire.event_type.strip().lower())
        if event_type is None:
            return None
    recipient_email, link_url, user_agent = wire.recipient_email, wire.link_url, wire.user_agent
    if (not event_id or event_id.isspace() or not campaign_id or campaign_id.isspace()
            or not recipient_id or recipient_id.isspace()
            or len(event_id) > _MAX_EVENT_ID or len(campaign_id) > _MAX_CAMPAIGN_ID
            or len(recipient_id) > _MAX_RECIPIENT_ID or len(email_id) > _MAX_EMAIL_ID
            or len(recipient_email) > _MAX_RECIPIENT_EMAIL or len(link_url) > _MAX_LINK_URL
            or len(metadata) > _MAX_METADATA or len(user_agent) > _MAX_USER_AGENT
            or b"\\u0000" in payload):  # NUL can only arrive escaped in JSON
        return None
    epoch = parse_timestamp(wire.timestamp)
    if epoch is None or not MIN_TIMESTAMP <= epoch <= latest_valid(reference_epoch):
        return None
    machine = wire.machine
    if machine is not False:
        machine = parse_machine_flag(machine)
        if machine is None:
            return None
    return (event_id, epoch, event_type, campaign_id, email_id, recipient_id,
            recipient_email, link_url, metadata, user_agent,
            machine or is_machine_user_agent(user_agent))
