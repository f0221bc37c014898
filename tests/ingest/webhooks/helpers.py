"""Test-side signing (written from the providers' documentation, independently of the
product code), keys generated per test session, and row checks against the contract."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import time
from functools import lru_cache

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from ingest.contract import Event, Rejection
from ingest.messages import validate_message
from ingest.webhooks import WebhookRequest, WebhookResult

NOW = time.time()


def request(body: bytes | str | object, headers: dict[str, str] | None = None,
            query: dict[str, str] | None = None, received_at: float | None = None
            ) -> WebhookRequest:
    if not isinstance(body, bytes | str):
        body = orjson.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    return WebhookRequest(headers={k.lower(): v for k, v in (headers or {}).items()},
                          query=query or {}, body=body,
                          received_at=NOW if received_at is None else received_at)


def rows(result: WebhookResult) -> list[dict]:
    """The rows as dicts (each must be compact JSON)."""
    decoded = []
    for row in result.rows:
        assert isinstance(row, bytes)
        value = orjson.loads(row)
        assert orjson.dumps(value) == row, "rows are compact JSON"
        decoded.append(value)
    return decoded


def events(result: WebhookResult) -> list[Event]:
    """Every row validated as the worker will: all must be Events."""
    found = []
    for row in result.rows:
        checked = validate_message(row, int(NOW))
        assert isinstance(checked, Event), (row, checked)
        found.append(checked)
    return found


def rejection(row: bytes) -> Rejection:
    checked = validate_message(row, int(NOW))
    assert isinstance(checked, Rejection), row
    return checked


def metadata(row: dict) -> dict:
    return orjson.loads(row["metadata"])


# --- SendGrid: ECDSA P-256 / SHA-256 over timestamp + body ---------------------------


@lru_cache(maxsize=4)
def ec_key(seed: int = 0) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def ec_public_base64(key: ec.EllipticCurvePrivateKey) -> str:
    """The verification key as SendGrid's console shows it: base64 DER, no armour."""
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def ec_public_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def sendgrid_headers(key: ec.EllipticCurvePrivateKey, body: bytes,
                     timestamp: int | None = None) -> dict[str, str]:
    stamp = str(int(NOW) if timestamp is None else timestamp)
    signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp}


# --- Mailgun: hex HMAC-SHA256(timestamp + token) -------------------------------------


def mailgun_signature(key: str, timestamp: str, token: str) -> str:
    return hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()


def mailgun_body(event_data: dict, key: str, token: str, timestamp: int | None = None,
                 parent_key: str | None = None) -> bytes:
    stamp = str(int(NOW) if timestamp is None else timestamp)
    signature = {"timestamp": stamp, "token": token,
                 "signature": mailgun_signature(key, stamp, token)}
    if parent_key is not None:
        signature["signature"] = mailgun_signature("subaccount-key", stamp, token)
        signature["parent-signature"] = mailgun_signature(parent_key, stamp, token)
    return orjson.dumps({"signature": signature, "event-data": event_data})


# --- Svix (Resend): base64 HMAC-SHA256("{id}.{timestamp}.{body}") -------------------


SVIX_SECRET = "whsec_" + base64.b64encode(b"test-secret-of-32-bytes-for-svix").decode()


def svix_headers(secret: str, msg_id: str, body: bytes, timestamp: int | None = None
                 ) -> dict[str, str]:
    stamp = str(int(NOW) if timestamp is None else timestamp)
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {"svix-id": msg_id, "svix-timestamp": stamp,
            "svix-signature": "v1," + base64.b64encode(digest).decode()}


# --- SNS: RSA over the canonical string, certificate served by a fake fetcher -------


CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000.pem"
TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-events"


@lru_cache(maxsize=2)
def rsa_key(seed: int = 0) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def certificate_pem(key: rsa.RSAPrivateKey, days_valid: tuple[float, float] = (-1, 1)) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    start = dt.datetime.fromtimestamp(NOW, tz=dt.UTC) + dt.timedelta(days=days_valid[0])
    end = dt.datetime.fromtimestamp(NOW, tz=dt.UTC) + dt.timedelta(days=days_valid[1])
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(start).not_valid_after(end)
                   .sign(key, hashes.SHA256()))
    return certificate.public_bytes(serialization.Encoding.PEM)


class FakeFetcher:
    """Serves certificates by URL and records every fetch."""

    def __init__(self, certificates: dict[str, bytes] | None = None) -> None:
        self.certificates = certificates if certificates is not None else {
            CERT_URL: certificate_pem(rsa_key())}
        self.calls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.calls.append(url)
        if url not in self.certificates:
            raise OSError(f"no certificate at {url}")
        return self.certificates[url]


def sns_timestamp(epoch: float | None = None) -> str:
    moment = dt.datetime.fromtimestamp(NOW if epoch is None else epoch, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def sns_sign(message: dict, key: rsa.RSAPrivateKey | None = None, version: str = "1") -> dict:
    """Sign as SNS does: the fields in byte order of their names, "name\\nvalue\\n" each."""
    if message["Type"] == "Notification":
        names = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        names = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn",
                 "Type"]
    canonical = "".join(f"{name}\n{message[name]}\n" for name in names
                        if message.get(name) is not None)
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = (key or rsa_key()).sign(canonical.encode(), padding.PKCS1v15(), algorithm)
    return {**message, "SignatureVersion": version,
            "Signature": base64.b64encode(signature).decode()}


def sns_notification(ses_event: dict, *, subject: str | None = None, topic: str = TOPIC,
                     cert_url: str = CERT_URL, version: str = "1", timestamp: float | None = None,
                     message_id: str = "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
                     key: rsa.RSAPrivateKey | None = None) -> dict:
    message = {
        "Type": "Notification", "MessageId": message_id, "TopicArn": topic,
        "Message": orjson.dumps(ses_event).decode(), "Timestamp": sns_timestamp(timestamp),
        "SigningCertURL": cert_url,
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&"
                          f"SubscriptionArn={topic}:c9135db0-26c4-47ec-8998-413945fb5a96",
    }
    if subject is not None:
        message["Subject"] = subject
    return sns_sign(message, key, version)


def sns_confirmation(kind: str = "SubscriptionConfirmation", *, topic: str = TOPIC,
                     subscribe_url: str | None = None, version: str = "1") -> dict:
    token = "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a7"
    message = {
        "Type": kind, "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b", "Token": token,
        "TopicArn": topic,
        "Message": f"You have chosen to subscribe to the topic {topic}.\nTo confirm the "
                   "subscription, visit the SubscribeURL included in this message.",
        "SubscribeURL": subscribe_url or "https://sns.us-east-1.amazonaws.com/?Action="
                                         f"ConfirmSubscription&TopicArn={topic}&Token={token}",
        "Timestamp": sns_timestamp(), "SigningCertURL": CERT_URL,
    }
    return sns_sign(message, version=version)
