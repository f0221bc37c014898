"""Email provider webhooks (issue #11): verification and mapping, without HTTP or Kafka.

The receivers for `POST /v0/webhooks/{provider}`: `sendgrid`, `mailgun`, `postmark`,
`ses` (SNS HTTP/S notifications), `ses-firehose` (Firehose HTTP endpoint delivery) and
`resend` (Svix). docs/webhooks.md says what a user configures on each side.

Interface (what the HTTP layer uses):

    PROVIDERS: dict[str, Provider]          # name -> receiver; unknown name -> 404
    build_providers(certificate_fetcher=None) -> dict[str, Provider]
                                            # fresh receivers (own replay store and SNS
                                            # certificate cache; tests pass a fake fetcher)
    WebhookSettings.from_env()              # CAMPAIGNS_SENDGRID_VERIFICATION_KEY,
                                            # CAMPAIGNS_MAILGUN_SIGNING_KEY,
                                            # CAMPAIGNS_RESEND_WEBHOOK_SECRET,
                                            # CAMPAIGNS_SES_TOPIC_ARNS (comma-separated),
                                            # CAMPAIGNS_FIREHOSE_ACCESS_KEY,
                                            # CAMPAIGNS_WEBHOOK_MAX_AGE_SECONDS (300),
                                            # CAMPAIGNS_WEBHOOK_CAMPAIGN_KEY (campaign_id),
                                            # CAMPAIGNS_WEBHOOK_RECIPIENT_KEY (recipient_id)
    WebhookRequest(headers (lower-cased names), query, body, received_at)

    provider.authenticate(request, settings, token_ok)   # WebhookError(401) / (503)
    result = provider.parse(request, settings)           # WebhookError(400); never other
    result.rows        # list[bytes]: compact contract JSON, one per recipient; produce each
                       #   keyed by its campaign_id (ingest.keys)
    result.ignored     # provider events with no counterpart (acknowledged, not stored)
    result.reply       # JSON body to answer on success (Firehose), else None
    result.confirm_url # SNS SubscribeURL to GET (https, AWS SNS host, no redirects):
                       #   confirm_subscription(url) does it (blocking; 503 on failure)
    provider.release(request)         # after a failed produce: forget the Mailgun token
    provider.error_body(request, err) # Firehose's {"requestId","timestamp","errorMessage"}

Flow for the HTTP layer: 404 for an unknown provider; read the body (413 beyond the
cap; gunzip a Content-Encoding: gzip body, which only Firehose sends); `token_ok` = a
valid DATASOURCES:APPEND:email_events token in ?token= (or, for Postmark, as the HTTP
Basic-auth password); `authenticate` then `parse` off the event loop (the SNS
certificate fetch is a blocking https GET, once per certificate); produce every row
with acks=all and answer 2xx (with `reply` when set) only once Kafka acknowledged all
of them; on a produce failure call `release` and answer 503 so the provider retries.
A WebhookError is answered with its status and `error_body(...)` or {"error": message}.

Authentication rule (design): every receiver accepts such a token; where a signing
key is configured (for `ses`, the topic allow-list) the signature is required as well;
with neither, 401. Signed timestamps more than `max_age_seconds` (300) from
`received_at` are refused (SNS: 3,600 s more, its retry window); Firehose sends no
signed timestamp. `parse` assumes `authenticate` passed.

Rows follow the event contract (ingest.contract): `event_id` is
`<provider>:<the provider's event id>` where one exists, else derived deterministically
from the message id, the type and the event's own facts (see each module); a row
without a campaign keeps no `campaign_id` and is quarantined by the worker with that
reason; `machine: true` marks events the provider flags as machine-generated.
"""

from __future__ import annotations

from ingest.webhooks.base import (
    DEFAULT_MAX_AGE_SECONDS,
    DEFAULT_SETTINGS,
    Provider,
    ReplayGuard,
    WebhookError,
    WebhookRequest,
    WebhookResult,
    WebhookSettings,
)
from ingest.webhooks.firehose import SesFirehose
from ingest.webhooks.mailgun import Mailgun
from ingest.webhooks.postmark import Postmark
from ingest.webhooks.resend import Resend
from ingest.webhooks.sendgrid import SendGrid
from ingest.webhooks.ses import Ses
from ingest.webhooks.sns import (
    CertificateCache,
    CertificateFetcher,
    confirm_subscription,
    fetch_certificate,
)

PROVIDER_NAMES: tuple[str, ...] = ("sendgrid", "mailgun", "postmark", "ses", "ses-firehose",
                                   "resend")


def build_providers(certificate_fetcher: CertificateFetcher | None = None) -> dict[str, Provider]:
    """A fresh receiver per provider (each holds its own state: Mailgun's replay tokens,
    the SNS certificate cache)."""
    providers: list[Provider] = [SendGrid(), Mailgun(), Postmark(),
                                 Ses(certificate_fetcher), SesFirehose(), Resend()]
    return {provider.name: provider for provider in providers}


PROVIDERS: dict[str, Provider] = build_providers()

__all__ = [
    "DEFAULT_MAX_AGE_SECONDS",
    "DEFAULT_SETTINGS",
    "PROVIDERS",
    "PROVIDER_NAMES",
    "CertificateCache",
    "CertificateFetcher",
    "Provider",
    "ReplayGuard",
    "WebhookError",
    "WebhookRequest",
    "WebhookResult",
    "WebhookSettings",
    "build_providers",
    "confirm_subscription",
    "fetch_certificate",
]
