"""The types every provider shares, the credential rule, freshness and replay checks.

Nothing here knows HTTP: the web layer builds a `WebhookRequest`, decides `token_ok`
(a valid DATASOURCES:APPEND:email_events token as ?token= or, for Postmark, as the
Basic-auth password) and turns a `WebhookError` into its status and JSON body.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

from ingest.errors import HttpError

DEFAULT_MAX_AGE_SECONDS = 300

ENV_SENDGRID_KEY = "CAMPAIGNS_SENDGRID_VERIFICATION_KEY"
ENV_MAILGUN_KEY = "CAMPAIGNS_MAILGUN_SIGNING_KEY"
ENV_RESEND_SECRET = "CAMPAIGNS_RESEND_WEBHOOK_SECRET"
ENV_SES_TOPIC_ARNS = "CAMPAIGNS_SES_TOPIC_ARNS"
ENV_FIREHOSE_KEY = "CAMPAIGNS_FIREHOSE_ACCESS_KEY"
ENV_MAX_AGE = "CAMPAIGNS_WEBHOOK_MAX_AGE_SECONDS"
ENV_CAMPAIGN_KEY = "CAMPAIGNS_WEBHOOK_CAMPAIGN_KEY"
ENV_RECIPIENT_KEY = "CAMPAIGNS_WEBHOOK_RECIPIENT_KEY"


class WebhookError(HttpError):
    """A request a receiver refuses: `status` is the HTTP status to answer (400 malformed,
    401 failed authentication, 503 a dependency, such as the SNS certificate host, is
    unreachable and the provider should retry). Nothing may be written for it."""


@dataclass(frozen=True)
class WebhookRequest:
    """One delivery as the HTTP layer received it. `headers` names are lower-cased; `body`
    is the raw body once any Content-Encoding was removed (only Firehose compresses, and
    it signs nothing); `received_at` is epoch seconds, the reference for staleness."""

    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    received_at: float


@dataclass
class WebhookResult:
    """What a delivery maps to.

    rows: one compact JSON event (the event contract) per row, ready to produce; a row
        may lack `campaign_id` (or be unreadable): the worker quarantines it with the
        reason, so it stays visible.
    ignored: provider events with no counterpart among the seven types (acknowledged,
        never quarantined).
    reply: the JSON body the provider expects on success (Firehose), else None.
    confirm_url: an SNS SubscribeURL to GET (no redirects) to confirm a subscription,
        already checked to be https on an AWS SNS host."""

    rows: list[bytes] = field(default_factory=list)
    ignored: int = 0
    reply: dict[str, Any] | None = None
    confirm_url: str | None = None


class Provider(Protocol):
    name: str

    def authenticate(self, request: WebhookRequest, settings: WebhookSettings,
                     token_ok: bool) -> None:
        """Raise WebhookError(401) unless the request is authentic (503 when that cannot
        be decided now, e.g. the SNS certificate cannot be fetched)."""

    def parse(self, request: WebhookRequest,
              settings: WebhookSettings | None = None) -> WebhookResult:
        """Map the body; WebhookError(400) when it is not the provider's format, never any
        other exception, whatever the bytes."""

    def release(self, request: WebhookRequest) -> None:
        """Forget what `authenticate` remembered about this delivery (Mailgun's replay
        token): call it when the rows could not all be produced, so the provider's retry
        of this very delivery is not refused as a replay."""

    def error_body(self, request: WebhookRequest, error: WebhookError) -> dict[str, Any] | None:
        """The error body the provider expects (Firehose), or None for {"error": ...}."""


# --- settings ------------------------------------------------------------------------


@lru_cache(maxsize=8)
def load_sendgrid_key(text: str) -> ec.EllipticCurvePublicKey:
    """The verification key SendGrid shows (base64 DER), with or without PEM armour."""
    stripped = text.strip()
    try:
        if "-----BEGIN" in stripped:
            key = load_pem_public_key(stripped.encode())
        else:
            der = base64.b64decode("".join(stripped.split()), validate=True)
            key = load_der_public_key(der)
    except (ValueError, binascii.Error, TypeError) as exc:
        raise ValueError(f"{ENV_SENDGRID_KEY} is not a base64 or PEM public key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(f"{ENV_SENDGRID_KEY} must be an ECDSA P-256 public key")
    return key


@lru_cache(maxsize=8)
def decode_svix_secret(secret: str) -> bytes:
    """The HMAC key of a Svix secret: the base64 part of `whsec_...`."""
    body = secret.strip()
    body = body[len("whsec_"):] if body.startswith("whsec_") else body
    try:
        key = base64.b64decode(body, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise ValueError(f"{ENV_RESEND_SECRET} must look like whsec_<base64>: {exc}") from exc
    if not key:
        raise ValueError(f"{ENV_RESEND_SECRET} is empty")
    return key


def _optional(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


@dataclass(frozen=True)
class WebhookSettings:
    """Receiver configuration. A key left unset means "no signature check": the receiver
    then requires a DATASOURCES:APPEND:email_events token instead. Keys are checked when
    the settings are built (a bad key fails at start-up, not per request)."""

    sendgrid_verification_key: str | None = None  # a public key: shown in repr
    mailgun_signing_key: str | None = field(default=None, repr=False)
    resend_webhook_secret: str | None = field(default=None, repr=False)
    ses_topic_arns: tuple[str, ...] = ()
    firehose_access_key: str | None = field(default=None, repr=False)
    max_age_seconds: int = DEFAULT_MAX_AGE_SECONDS
    campaign_key: str = "campaign_id"  # custom arg / variable / metadata / tag naming the campaign
    recipient_key: str = "recipient_id"  # ... naming the recipient id

    def __post_init__(self) -> None:
        for name in ("sendgrid_verification_key", "mailgun_signing_key",
                     "resend_webhook_secret", "firehose_access_key"):
            object.__setattr__(self, name, _optional(getattr(self, name)))
        arns = self.ses_topic_arns
        if isinstance(arns, str):
            arns = arns.split(",")
        object.__setattr__(self, "ses_topic_arns",
                           tuple(arn.strip() for arn in arns if arn and arn.strip()))
        if not isinstance(self.max_age_seconds, int) or self.max_age_seconds <= 0:
            raise ValueError(f"{ENV_MAX_AGE} must be a positive number of seconds")
        if not self.campaign_key or not self.recipient_key:
            raise ValueError("campaign_key and recipient_key must not be empty")
        if self.sendgrid_verification_key is not None:
            load_sendgrid_key(self.sendgrid_verification_key)
        if self.resend_webhook_secret is not None:
            decode_svix_secret(self.resend_webhook_secret)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WebhookSettings:
        env = os.environ if environ is None else environ
        raw_age = env.get(ENV_MAX_AGE, "").strip()
        if raw_age and not raw_age.isdigit():
            raise ValueError(f"{ENV_MAX_AGE} must be a positive number of seconds, "
                             f"got {raw_age[:32]!r}")
        return cls(
            sendgrid_verification_key=env.get(ENV_SENDGRID_KEY),
            mailgun_signing_key=env.get(ENV_MAILGUN_KEY),
            resend_webhook_secret=env.get(ENV_RESEND_SECRET),
            ses_topic_arns=tuple(env.get(ENV_SES_TOPIC_ARNS, "").split(",")),
            firehose_access_key=env.get(ENV_FIREHOSE_KEY),
            max_age_seconds=int(raw_age) if raw_age else DEFAULT_MAX_AGE_SECONDS,
            campaign_key=env.get(ENV_CAMPAIGN_KEY, "").strip() or "campaign_id",
            recipient_key=env.get(ENV_RECIPIENT_KEY, "").strip() or "recipient_id",
        )


DEFAULT_SETTINGS = WebhookSettings()


# --- checks --------------------------------------------------------------------------


def signature_required(provider: str, configured: bool, token_ok: bool, env_name: str) -> bool:
    """The design's rule: a configured key makes the signature required (a token does not
    replace it); without a key the token is required; with neither, 401."""
    if configured:
        return True
    if token_ok:
        return False
    raise WebhookError(401, f"{provider}: no credentials: pass a token with "
                            f"DATASOURCES:APPEND:email_events as ?token=, or set {env_name} "
                            "so the provider's signature is checked")


def check_fresh(provider: str, timestamp: float, request: WebhookRequest,
                max_age: float, max_ahead: float | None = None) -> None:
    """Refuse a signed timestamp more than `max_age` seconds before reception, or more
    than `max_ahead` (default `max_age`) after it (clock skew)."""
    ahead = max_age if max_ahead is None else max_ahead
    if not math.isfinite(timestamp) or not (
            -ahead <= request.received_at - timestamp <= max_age):
        raise WebhookError(401, f"{provider}: the signed timestamp is too far from now "
                                f"(older than {int(max_age)} s or more than {int(ahead)} s "
                                "ahead): a stale or replayed request")


def parse_epoch(value: object) -> int | None:
    """Integer epoch seconds from a signed header or field ("1700000000" or 1700000000)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12:
        return int(value)
    return None


class ReplayGuard:
    """Tokens seen recently (thread-safe, bounded). A token is remembered until the
    timestamp it was signed with goes stale, after which the freshness check refuses it
    anyway. Beyond `max_entries` the oldest are forgotten first (a replay that slips past
    then still counts once: the worker deduplicates by event_id)."""

    def __init__(self, max_entries: int = 200_000) -> None:
        self.max_entries = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, token: str, expires_at: float, now: float) -> bool:
        """True the first time `token` is seen (and remember it), False for a replay."""
        with self._lock:
            seen = self._seen
            while seen:
                oldest, expiry = next(iter(seen.items()))
                if expiry > now:
                    break
                del seen[oldest]
            if token in seen:
                return False
            while len(seen) >= self.max_entries:
                seen.popitem(last=False)
            seen[token] = expires_at
            return True

    def release(self, token: str) -> None:
        with self._lock:
            self._seen.pop(token, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)


class BaseProvider:
    """Defaults for the optional parts of `Provider`."""

    name = ""

    def release(self, request: WebhookRequest) -> None:
        return None

    def error_body(self, request: WebhookRequest, error: WebhookError) -> dict[str, Any] | None:
        return None
