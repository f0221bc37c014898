"""Amazon SNS HTTP/S message signatures, versions 1 (SHA1withRSA) and 2 (SHA256withRSA).

The string to sign is built from the message's own fields, each as "Name\\nvalue\\n", in
this order: for a Notification Message, MessageId, Subject (only when present),
Timestamp, TopicArn, Type; for a SubscriptionConfirmation or UnsubscribeConfirmation
Message, MessageId, SubscribeURL, Timestamp, Token, TopicArn, Type. The signature is
checked with the public key of the X.509 certificate at SigningCertURL, which is only
ever fetched over https from an SNS host (`sns.<region>.amazonaws.com`, or `.com.cn`),
through an injectable `CertificateFetcher`, and cached (bounded).
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ingest.webhooks.base import WebhookError, WebhookRequest, check_fresh

CertificateFetcher = Callable[[str], bytes]  # https URL -> PEM bytes; may raise

SNS_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~%!$&'()*+,;=:@/?]+")
MAX_CERTIFICATE_BYTES = 64 * 1024
# SNS re-sends the same signed message (same Timestamp) for up to 3,600 s, a hard limit
# of HTTP/S delivery policies: such a retry must not be refused as stale.
SNS_RETRY_SECONDS = 3600

NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                       "TopicArn", "Type")
MESSAGE_FIELDS = {
    "Notification": NOTIFICATION_FIELDS,
    "SubscriptionConfirmation": CONFIRMATION_FIELDS,
    "UnsubscribeConfirmation": CONFIRMATION_FIELDS,
}
HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}


def aws_sns_url(url: object, *, certificate: bool) -> str | None:
    """The URL, normalized, when it is https on an AWS SNS host (default port, no user
    info, no fragment; a certificate URL must name a .pem file and have no query);
    else None."""
    if not isinstance(url, str) or len(url) > 4096 or not _URL_CHARS.fullmatch(url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if (parts.scheme != "https" or "@" in parts.netloc or port not in (None, 443)
            or host is None or not SNS_HOST.fullmatch(host) or parts.fragment
            or not parts.path.startswith("/")):
        return None
    if certificate and (parts.query or not parts.path.endswith(".pem")):
        return None
    return urlunsplit(("https", host, parts.path, parts.query, ""))


def fetch_certificate(url: str) -> bytes:
    """The default fetcher: an https GET (TLS verified, no redirects, 5 s, 64 kB)."""
    import httpx

    try:
        with httpx.Client(timeout=5.0, follow_redirects=False) as client, \
                client.stream("GET", url) as response:
            if response.status_code != 200:
                raise WebhookError(503, f"ses: the SNS signing certificate at {url} answered "
                                        f"HTTP {response.status_code}")
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_CERTIFICATE_BYTES:
                    raise WebhookError(503, "ses: the SNS signing certificate is too large")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as exc:
        raise WebhookError(503, f"ses: cannot fetch the SNS signing certificate: {exc}") from exc


def confirm_subscription(url: str, client: Any = None) -> None:
    """GET a SubscriptionConfirmation's SubscribeURL (`WebhookResult.confirm_url`): https,
    no redirects, 5 s. WebhookError(503) when SNS does not answer 200, so the HTTP layer
    answers 503 and SNS re-sends the confirmation. `client` is an httpx.Client (tests)."""
    import httpx

    if aws_sns_url(url, certificate=False) != url:
        raise WebhookError(400, "ses: SubscribeURL is not an https URL of an AWS SNS host")
    try:
        if client is None:
            with httpx.Client(timeout=5.0, follow_redirects=False) as own:
                response = own.get(url)
        else:
            response = client.get(url, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise WebhookError(503, f"ses: cannot confirm the SNS subscription: {exc}") from exc
    if response.status_code != 200:
        raise WebhookError(503, "ses: SNS answered the subscription confirmation with HTTP "
                                f"{response.status_code}")


class CertificateCache:
    """Signing certificates by URL (thread-safe, at most `max_entries`, least recently
    used evicted first). SNS rotates its certificate rarely and under a new URL."""

    def __init__(self, fetcher: CertificateFetcher | None = None, max_entries: int = 32) -> None:
        self.fetcher = fetcher or fetch_certificate
        self.max_entries = max_entries
        self._cache: OrderedDict[str, x509.Certificate] = OrderedDict()
        self._lock = threading.Lock()
        self.fetches = 0

    def get(self, url: str) -> x509.Certificate:
        with self._lock:
            cached = self._cache.get(url)
            if cached is not None:
                self._cache.move_to_end(url)
                return cached
        try:
            pem = self.fetcher(url)
        except WebhookError:
            raise
        except Exception as exc:  # noqa: BLE001 - a fetcher's failure: let SNS retry later
            raise WebhookError(503, "ses: cannot fetch the SNS signing certificate "
                                    f"({type(exc).__name__}: {str(exc)[:200]})") from exc
        finally:
            self.fetches += 1
        if not isinstance(pem, bytes) or len(pem) > MAX_CERTIFICATE_BYTES:
            raise WebhookError(503, "ses: the SNS signing certificate could not be read")
        try:
            certificate = x509.load_pem_x509_certificate(pem)
        except ValueError as exc:
            raise WebhookError(401, "ses: SigningCertURL does not serve a PEM certificate") \
                from exc
        with self._lock:
            self._cache[url] = certificate
            self._cache.move_to_end(url)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return certificate


def _string(value: object) -> str:
    return value if isinstance(value, str) else ""


def string_to_sign(message: dict[str, Any]) -> bytes:
    """The canonical string AWS signs for this message type (401 when a field is
    missing or not a string)."""
    fields = MESSAGE_FIELDS.get(_string(message.get("Type")))
    if fields is None:
        raise WebhookError(401, "ses: not an SNS Notification, SubscriptionConfirmation or "
                                "UnsubscribeConfirmation")
    lines: list[str] = []
    for name in fields:
        value = message.get(name)
        if name == "Subject" and value is None:
            continue  # only signed when the publisher gave one
        if not isinstance(value, str):
            raise WebhookError(401, f"ses: the SNS message has no {name}")
        lines.append(f"{name}\n{value}\n")
    return "".join(lines).encode("utf-8")


def sns_epoch(value: object) -> float | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def verify_sns_message(message: dict[str, Any], request: WebhookRequest,
                       allowed_topics: tuple[str, ...], max_age: float,
                       certificates: CertificateCache) -> None:
    """Raise WebhookError(401) unless `message` is signed by SNS, from an allowed topic
    (any topic when `allowed_topics` is empty) and fresh."""
    data = string_to_sign(message)
    topic = message.get("TopicArn")
    if allowed_topics and topic not in allowed_topics:
        raise WebhookError(401, f"ses: TopicArn {_string(topic)[:256]!r} is not in "
                                "CAMPAIGNS_SES_TOPIC_ARNS")
    algorithm = HASHES.get(_string(message.get("SignatureVersion")))
    if algorithm is None:
        raise WebhookError(401, "ses: SignatureVersion must be \"1\" or \"2\"")
    url = aws_sns_url(message.get("SigningCertURL"), certificate=True)
    if url is None:
        raise WebhookError(401, "ses: SigningCertURL is not an https URL of an AWS SNS host "
                                "(sns.<region>.amazonaws.com)")
    signature_text = message.get("Signature")
    try:
        if not isinstance(signature_text, str):
            raise ValueError("missing")
        signature = base64.b64decode(signature_text, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise WebhookError(401, "ses: the SNS Signature is missing or not base64") from exc
    epoch = sns_epoch(message.get("Timestamp"))
    if epoch is None:
        raise WebhookError(401, "ses: the SNS Timestamp is not ISO-8601")
    check_fresh("ses", epoch, request, SNS_RETRY_SECONDS + max_age, max_ahead=max_age)
    certificate = certificates.get(url)
    moment = datetime.fromtimestamp(request.received_at, tz=UTC)
    if not certificate.not_valid_before_utc <= moment <= certificate.not_valid_after_utc:
        raise WebhookError(401, "ses: the SNS signing certificate is not valid now")
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise WebhookError(401, "ses: the SNS signing certificate has no RSA key")
    try:
        key.verify(signature, data, padding.PKCS1v15(), algorithm())
    except (InvalidSignature, UnsupportedAlgorithm, ValueError) as exc:
        raise WebhookError(401, "ses: the SNS signature does not match the message") from exc
