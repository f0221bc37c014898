"""WebhookSettings from the environment: parsing, start-up validation, no secrets in repr."""

from __future__ import annotations

import pytest

from ingest.webhooks import PROVIDER_NAMES, PROVIDERS, WebhookSettings
from tests.ingest.webhooks.helpers import SVIX_SECRET, ec_key, ec_public_base64, ec_public_pem


def test_from_env():
    settings = WebhookSettings.from_env({
        "CAMPAIGNS_SENDGRID_VERIFICATION_KEY": ec_public_pem(ec_key(0)),
        "CAMPAIGNS_MAILGUN_SIGNING_KEY": " key-abc ",
        "CAMPAIGNS_RESEND_WEBHOOK_SECRET": SVIX_SECRET,
        "CAMPAIGNS_SES_TOPIC_ARNS": "arn:aws:sns:us-east-1:1:a, arn:aws:sns:eu-west-1:1:b,,",
        "CAMPAIGNS_FIREHOSE_ACCESS_KEY": "fh",
        "CAMPAIGNS_WEBHOOK_MAX_AGE_SECONDS": "600",
        "CAMPAIGNS_WEBHOOK_CAMPAIGN_KEY": "campaign",
    })
    assert settings.mailgun_signing_key == "key-abc"
    assert settings.ses_topic_arns == ("arn:aws:sns:us-east-1:1:a", "arn:aws:sns:eu-west-1:1:b")
    assert settings.max_age_seconds == 600
    assert settings.campaign_key == "campaign" and settings.recipient_key == "recipient_id"
    for secret in ("key-abc", SVIX_SECRET, "'fh'"):
        assert secret not in repr(settings)
    empty = WebhookSettings.from_env({"CAMPAIGNS_MAILGUN_SIGNING_KEY": "  "})
    assert empty == WebhookSettings() and empty.max_age_seconds == 300
    assert empty.ses_topic_arns == ()


@pytest.mark.parametrize("environ", [
    {"CAMPAIGNS_SENDGRID_VERIFICATION_KEY": "not a key"},
    {"CAMPAIGNS_SENDGRID_VERIFICATION_KEY": "QUJD"},  # base64, but not a public key
    {"CAMPAIGNS_RESEND_WEBHOOK_SECRET": "whsec_%%%"},
    {"CAMPAIGNS_RESEND_WEBHOOK_SECRET": "whsec_"},
    {"CAMPAIGNS_WEBHOOK_MAX_AGE_SECONDS": "five"},
    {"CAMPAIGNS_WEBHOOK_MAX_AGE_SECONDS": "0"},
])
def test_bad_configuration_fails_at_start(environ):
    with pytest.raises(ValueError):
        WebhookSettings.from_env(environ)


def test_sendgrid_key_must_be_p256():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    other_curve = ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with pytest.raises(ValueError, match="P-256"):
        WebhookSettings(sendgrid_verification_key=other_curve)
    WebhookSettings(sendgrid_verification_key=ec_public_base64(ec_key(0)))


def test_the_six_providers():
    assert set(PROVIDERS) == set(PROVIDER_NAMES) == {
        "sendgrid", "mailgun", "postmark", "ses", "ses-firehose", "resend"}
    assert all(PROVIDERS[name].name == name for name in PROVIDER_NAMES)
