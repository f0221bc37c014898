"""Provider payloads in their documented formats (the examples of each provider's
webhook reference, with campaign ids added the way a sender sets them)."""

from __future__ import annotations

import copy

# --- SendGrid: one POST is an array of events -----------------------------------------

_SG = {"email": "example@test.com", "timestamp": 1513299569,
       "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>", "category": "cat facts",
       "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
       "campaign_id": "spring-sale"}


def _sg(event: str, event_id: str, **extra: object) -> dict:
    return {**_SG, "event": event, "sg_event_id": event_id, **extra}


SENDGRID_BATCH = [
    _sg("processed", "rbtnWrG1DVDGGGFHFyun0A=="),
    _sg("deferred", "qK1MxfAaE_ukyyNsjxTpkw==", response="400 try again later", attempt="5"),
    _sg("delivered", "hqFbp3HH9WxIM0R2-x2M1Q==", response="250 OK", ip="168.1.1.1", tls=1),
    _sg("open", "FOTFFO0ecsBE-zxFXfs6WA==", sg_machine_open=False, ip="255.255.255.255",
        useragent="Mozilla/4.0 (compatible; MSIE 6.1; Windows XP; .NET CLR 1.1.4322)"),
    _sg("open", "MPPopen0ecsBE-zxFXfs6WA==", sg_machine_open=True, ip="17.58.0.1",
        useragent="Mozilla/5.0"),
    _sg("click", "kCAi1KttyQ2Cp9Bg5Z1A6A==", url="http://www.sendgrid.com/",
        url_offset={"index": 0, "type": "html"}, ip="255.255.255.255",
        useragent="Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36"),
    _sg("bounce", "6g4ZI7SA-xmRDv57GoPIPw==", reason="500 unknown recipient", status="5.0.0",
        type="bounce", bounce_classification="Invalid Address"),
    _sg("bounce", "blockedlQ2Cp9Bg5Z1A6A==", reason="421 try later", status="4.0.0",
        type="blocked", bounce_classification="Reputation"),
    _sg("dropped", "zmzJhfJgAfUSOW80yEbPyw==", reason="Bounced Address", status="5.0.0"),
    _sg("spamreport", "37nvH5QBz858KGVYCM4uOA=="),
    _sg("unsubscribe", "zz_BjPgU_5pS-J8vlfB1sg=="),
    _sg("group_unsubscribe", "ahSCB7xYcXFb-hEaawsPRw==", asm_group_id=10,
        useragent="Mozilla/5.0", ip="255.255.255.255", url="http://www.sendgrid.com/"),
    _sg("group_resubscribe", "H_6U9CKDUn9-6Qqkh6Ek3Q==", asm_group_id=10,
        useragent="Mozilla/5.0", ip="255.255.255.255", url="http://www.sendgrid.com/"),
]
# event -> canonical type for the rows of SENDGRID_BATCH, in order; the rest are ignored
SENDGRID_EXPECTED = ["send", "delivered", "open", "open", "click", "bounce", "complaint",
                     "unsubscribe", "unsubscribe"]
SENDGRID_IGNORED = 4  # deferred, blocked bounce, dropped, group_resubscribe

# --- Mailgun: one POST per event, {"signature", "event-data"} ------------------------

_MG_MESSAGE = {"headers": {"to": "Alice <alice@example.com>",
                           "message-id": "20130503182626.18666.16540@sandbox.mailgun.org",
                           "from": "Bob <bob@sandbox.mailgun.org>",
                           "subject": "Test webhook"},
               "attachments": [], "size": 111}
_MG_BASE = {
    "log-level": "info", "recipient": "Alice@Example.com", "recipient-domain": "example.com",
    "message": _MG_MESSAGE, "flags": {"is-authenticated": True, "is-test-mode": False},
    "envelope": {"transport": "smtp", "sender": "bob@sandbox.mailgun.org",
                 "sending-ip": "209.61.154.250", "targets": "alice@example.com"},
    "tags": ["newsletter", "april"], "campaigns": [],
    "user-variables": {"campaign_id": "spring-sale", "recipient_id": "user-42"},
}
_MG_CLIENT = {"client-os": "Linux", "device-type": "desktop", "client-name": "Chrome",
              "client-type": "browser",
              "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.31 Chrome/26.0"}


def _mg(event: str, event_id: str, timestamp: float, **extra: object) -> dict:
    return {**copy.deepcopy(_MG_BASE), "event": event, "id": event_id,
            "timestamp": timestamp, **extra}


MAILGUN_EVENTS = [
    ("send", _mg("accepted", "ncV2XwynRuKDTpDM0g_iEA", 1521233123.501, method="HTTP")),
    ("delivered", _mg("delivered", "CPgfbmQMTCKtHW6uIWtuVe", 1521472262.908181,
                      **{"delivery-status": {"tls": True, "mx-host": "smtp-in.example.com",
                                             "code": 250, "description": "",
                                             "session-seconds": 0.43, "attempt-no": 1,
                                             "message": "OK"}})),
    ("open", _mg("opened", "Ase7i2zsRYeDXztHGENqRA", 1521243339.873676, ip="50.56.129.169",
                 geolocation={"country": "US", "region": "CA", "city": "San Francisco"},
                 **{"client-info": _MG_CLIENT})),
    ("open", _mg("opened", "apple7i2zsRYeDXztHGENqRA", 1521243340.1, ip="17.58.0.1",
                 geolocation={"country": "US", "region": "Unknown", "city": "Unknown"},
                 **{"client-info": {**_MG_CLIENT, "user-agent": "Mozilla/5.0",
                                    "bot": "apple"}})),
    ("click", _mg("clicked", "Ase7i2zsRYeDXztHGENqRB", 1521243339.873676, ip="50.56.129.169",
                  url="https://example.com/offer?utm_source=mailgun",
                  **{"client-info": _MG_CLIENT})),
    ("bounce", _mg("failed", "G9Bn5sl1TC6nu79C8C0bwg", 1521233195.375624,
                   severity="permanent", reason="bounce",
                   **{"delivery-status": {"attempt-no": 1, "code": 550,
                                          "message": "5.1.1 The email account that you "
                                                     "tried to reach does not exist.",
                                          "description": "", "session-seconds": 0}})),
    ("complaint", _mg("complained", "-Agny091SquKnsrW2NEKUA", 1521233123.501)),
    ("unsubscribe", _mg("unsubscribed", "W3X4JOhFT-OZidZGKKr9iA", 1521243339.873676,
                        ip="50.56.129.169", **{"client-info": _MG_CLIENT})),
    (None, _mg("failed", "tempfail5sl1TC6nu79C8C0bwg", 1521233195.375624,
               severity="temporary", reason="generic",
               **{"delivery-status": {"attempt-no": 1, "code": 452,
                                      "message": "4.2.2 The email account is over quota"}})),
    (None, _mg("failed", "suppressTC6nu79C8C0bwg", 1521233195.375624, severity="permanent",
               reason="suppress-bounce",
               **{"delivery-status": {"attempt-no": 1, "code": 605,
                                      "message": "Not delivering to previously bounced "
                                                 "address"}})),
    (None, _mg("rejected", "rejectedXwynRuKDTpDM0g", 1521233123.501,
               reject={"reason": "hit generic hard limit"})),
    (None, _mg("stored", "storedXwynRuKDTpDM0g", 1521233123.501)),
]

# --- Postmark: one POST per record ---------------------------------------------------

_PM_META = {"campaign_id": "spring-sale", "example": "value"}
POSTMARK_RECORDS = [
    ("delivered", {
        "RecordType": "Delivery", "ServerID": 23, "MessageStream": "outbound",
        "MessageID": "00000000-0000-0000-0000-000000000000", "Recipient": "john@example.com",
        "Tag": "welcome-email", "DeliveredAt": "2019-11-05T16:33:54.9070259Z",
        "Details": "Test delivery webhook details", "Metadata": _PM_META}),
    ("bounce", {
        "RecordType": "Bounce", "MessageStream": "outbound", "ID": 4323372036854775807,
        "Type": "HardBounce", "TypeCode": 1, "Name": "Hard bounce", "Tag": "Test",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483", "Metadata": _PM_META,
        "ServerID": 23,
        "Description": "The server was unable to deliver your message (ex: unknown user, "
                       "mailbox not found).",
        "Details": "Test bounce details", "Email": "john@example.com",
        "From": "sender@example.com", "BouncedAt": "2019-11-05T16:33:54.9070259Z",
        "DumpAvailable": True, "Inactive": True, "CanActivate": True,
        "Subject": "Test subject", "Content": "<Full dump of bounce>"}),
    (None, {
        "RecordType": "Bounce", "MessageStream": "outbound", "ID": 4323372036854775808,
        "Type": "SoftBounce", "TypeCode": 4096, "Name": "Soft bounce", "Tag": "Test",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79484", "Metadata": _PM_META,
        "Description": "Unable to temporarily deliver this email.", "Details": "mailbox full",
        "Email": "john@example.com", "BouncedAt": "2019-11-05T16:33:54.9070259Z",
        "Inactive": False}),
    ("complaint", {
        "RecordType": "SpamComplaint", "MessageStream": "outbound", "ID": 42,
        "Type": "SpamComplaint", "TypeCode": 512, "Name": "Spam complaint", "Tag": "Test",
        "MessageID": "00000000-0000-0000-0000-000000000000", "ServerID": 1234,
        "Metadata": _PM_META, "Description": "", "Details": "Test spam complaint details",
        "Email": "john@example.com", "From": "sender@example.com",
        "BouncedAt": "2019-11-05T16:33:54.9070259Z", "DumpAvailable": True,
        "Inactive": True, "CanActivate": False, "Subject": "Test subject",
        "Content": "<Abuse report dump>"}),
    ("open", {
        "RecordType": "Open", "MessageStream": "outbound", "Metadata": _PM_META,
        "FirstOpen": True,
        "Client": {"Name": "Chrome 35.0.1916.153", "Company": "Google", "Family": "Chrome"},
        "OS": {"Name": "OS X 10.7 Lion", "Company": "Apple Computer, Inc.",
               "Family": "OS X 10"},
        "Platform": "WebMail",
        "UserAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_7_5) AppleWebKit/537.36 "
                     "(KHTML, like Gecko) Chrome/35.0.1916.153 Safari/537.36",
        "ReadSeconds": 5,
        "Geo": {"CountryISOCode": "RS", "Country": "Serbia", "RegionISOCode": "VO",
                "Region": "Autonomna Pokrajina Vojvodina", "City": "Novi Sad", "Zip": "21000",
                "Coords": "45.2517,19.8369", "IP": "188.2.95.4"},
        "MessageID": "00000000-0000-0000-0000-000000000000",
        "ReceivedAt": "2019-11-05T16:33:54.9070259Z", "Tag": "welcome-email",
        "Recipient": "john@example.com"}),
    ("click", {
        "RecordType": "Click", "MessageStream": "outbound", "ClickLocation": "HTML",
        "Client": {"Name": "Chrome 35.0.1916.153", "Company": "Google", "Family": "Chrome"},
        "OS": {"Name": "OS X 10.7 Lion", "Company": "Apple Computer, Inc.",
               "Family": "OS X 10"},
        "Platform": "Desktop",
        "UserAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_7_5) AppleWebKit/537.36 "
                     "(KHTML, like Gecko) Chrome/35.0.1916.153 Safari/537.36",
        "OriginalLink": "https://example.com",
        "Geo": {"CountryISOCode": "RS", "Country": "Serbia", "City": "Novi Sad",
                "IP": "188.2.95.4"},
        "MessageID": "00000000-0000-0000-0000-000000000000",
        "ReceivedAt": "2019-11-05T16:33:54.9070259Z", "Tag": "welcome-email",
        "Recipient": "john@example.com", "Metadata": _PM_META}),
    ("unsubscribe", {
        "RecordType": "SubscriptionChange", "MessageID": "00000000-0000-0000-0000-000000000000",
        "ServerID": 23, "MessageStream": "broadcast", "ChangedAt": "2020-02-01T10:53:34.416071Z",
        "Recipient": "john@example.com", "Origin": "Recipient", "SuppressSending": True,
        "SuppressionReason": "ManualSuppression", "Tag": "welcome-email", "Metadata": _PM_META}),
    (None, {
        "RecordType": "SubscriptionChange", "MessageID": "00000000-0000-0000-0000-000000000001",
        "ServerID": 23, "MessageStream": "bulk", "ChangedAt": "2020-02-01T10:53:34.416071Z",
        "Recipient": "bounced-address@wildbit.com", "Origin": "Recipient",
        "SuppressSending": True, "SuppressionReason": "HardBounce", "Tag": "my-tag",
        "Metadata": _PM_META}),
    (None, {
        "RecordType": "SubscriptionChange", "MessageID": "00000000-0000-0000-0000-000000000002",
        "ServerID": 23, "MessageStream": "bulk", "ChangedAt": "2020-02-02T10:53:34.416071Z",
        "Recipient": "john@example.com", "Origin": "Customer", "SuppressSending": False,
        "SuppressionReason": None, "Tag": "my-tag", "Metadata": _PM_META}),
]

# --- Amazon SES event publishing (the records SES publishes to SNS and Firehose) ----

SES_MAIL = {
    "timestamp": "2017-08-05T00:40:02.012Z", "source": "Sender Name <sender@example.com>",
    "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/sender@example.com",
    "sendingAccountId": "123456789012",
    "messageId": "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000",
    "destination": ["recipient@example.com"], "headersTruncated": False,
    "headers": [{"name": "From", "value": "Sender Name <sender@example.com>"},
                {"name": "To", "value": "recipient@example.com"},
                {"name": "Subject", "value": "Message sent from Amazon SES"}],
    "commonHeaders": {"from": ["Sender Name <sender@example.com>"],
                      "to": ["recipient@example.com"],
                      "messageId": "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000",
                      "subject": "Message sent from Amazon SES"},
    "tags": {"ses:configuration-set": ["ConfigSet"], "ses:source-ip": ["192.0.2.0"],
             "ses:from-domain": ["example.com"], "ses:caller-identity": ["ses_user"],
             "campaign_id": ["spring-sale"]},
}


def ses(event_type: str, detail_key: str | None, detail: dict | None, **mail: object) -> dict:
    event = {"eventType": event_type, "mail": {**copy.deepcopy(SES_MAIL), **mail}}
    if detail_key is not None:
        event[detail_key] = detail
    return event


SES_EVENTS = [
    ("send", ses("Send", "send", {})),
    ("delivered", ses("Delivery", "delivery", {
        "timestamp": "2017-08-05T00:41:04.133Z", "processingTimeMillis": 11893,
        "recipients": ["recipient@example.com"],
        "smtpResponse": "250 2.6.0 Message received", "reportingMTA": "mta.example.com"})),
    ("open", ses("Open", "open", {
        "ipAddress": "192.0.2.1", "timestamp": "2017-08-09T22:00:19.652Z",
        "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 10_3_3 like Mac OS X) "
                     "AppleWebKit/603.3.8 (KHTML, like Gecko) Mobile/14G60"})),
    ("click", ses("Click", "click", {
        "ipAddress": "192.0.2.1",
        "link": "http://docs.aws.amazon.com/ses/latest/DeveloperGuide/send-email-smtp.html",
        "linkTags": {"samplekey0": ["samplevalue0"], "samplekey1": ["samplevalue1"]},
        "timestamp": "2017-08-09T23:51:25.570Z",
        "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                     "(KHTML, like Gecko) Chrome/60.0.3112.90 Safari/537.36"})),
    ("bounce", ses("Bounce", "bounce", {
        "bounceType": "Permanent", "bounceSubType": "General",
        "bouncedRecipients": [{"emailAddress": "recipient@example.com", "action": "failed",
                               "status": "5.1.1",
                               "diagnosticCode": "smtp; 550 5.1.1 user unknown"}],
        "timestamp": "2017-08-05T00:41:02.669Z",
        "feedbackId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
        "reportingMTA": "dsn; mta.example.com"})),
    ("complaint", ses("Complaint", "complaint", {
        "complainedRecipients": [{"emailAddress": "recipient@example.com"}],
        "timestamp": "2017-08-05T00:41:02.669Z",
        "feedbackId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000001",
        "userAgent": "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36",
        "complaintFeedbackType": "abuse", "arrivalDate": "2017-08-05T00:41:02.669Z"})),
    ("unsubscribe", ses("Subscription", "subscription", {
        "contactList": "ContactListName", "timestamp": "2022-01-12T01:00:14.340Z",
        "source": "UnsubscribeHeader",
        "newTopicPreferences": {"unsubscribeAll": True, "topicSubscriptionStatus": [
            {"topicName": "ExampleTopicName", "subscriptionStatus": "OptOut"}]},
        "oldTopicPreferences": {"unsubscribeAll": False, "topicSubscriptionStatus": [
            {"topicName": "ExampleTopicName", "subscriptionStatus": "OptOut"}]}})),
    (None, ses("Bounce", "bounce", {
        "bounceType": "Transient", "bounceSubType": "MailboxFull",
        "bouncedRecipients": [{"emailAddress": "recipient@example.com", "status": "4.2.2"}],
        "timestamp": "2017-08-05T00:41:02.669Z", "feedbackId": "transient-000000"})),
    (None, ses("Reject", "reject", {"reason": "Bad content"})),
    (None, ses("Rendering Failure", "failure", {
        "errorMessage": "Attribute 'attributeName' is not present in the rendering data.",
        "templateName": "MyTemplate"})),
    (None, ses("DeliveryDelay", "deliveryDelay", {
        "timestamp": "2020-06-16T00:15:40.641Z", "delayType": "TransientCommunicationFailure",
        "expirationTime": "2020-06-16T00:25:40.914Z",
        "delayedRecipients": [{"emailAddress": "recipient@example.com", "status": "4.4.1",
                               "diagnosticCode": "smtp; 421 4.4.1 Unable to connect"}]})),
    (None, ses("Subscription", "subscription", {  # opting back in is not an unsubscribe
        "contactList": "ContactListName", "timestamp": "2022-01-13T01:00:14.340Z",
        "source": "SubscriptionPreferencePage",
        "newTopicPreferences": {"unsubscribeAll": False, "topicSubscriptionStatus": [
            {"topicName": "ExampleTopicName", "subscriptionStatus": "OptIn"}]},
        "oldTopicPreferences": {"unsubscribeAll": False, "topicSubscriptionStatus": [
            {"topicName": "ExampleTopicName", "subscriptionStatus": "OptOut"}]}})),
]

SES_MULTI_BOUNCE = ses("Bounce", "bounce", {
    "bounceType": "Permanent", "bounceSubType": "General",
    "bouncedRecipients": [
        {"emailAddress": "one@example.com", "action": "failed", "status": "5.1.1",
         "diagnosticCode": "smtp; 550 5.1.1 user unknown"},
        {"emailAddress": "Two@Example.com", "action": "failed", "status": "5.1.1",
         "diagnosticCode": "smtp; 550 5.1.1 user unknown"}],
    "timestamp": "2017-08-05T00:41:02.669Z",
    "feedbackId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000002"},
    destination=["one@example.com", "Two@Example.com"])

# identity feedback notifications (no configuration set): no tags, hence no campaign
SES_IDENTITY_BOUNCE = {
    "notificationType": "Bounce",
    "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
               "bouncedRecipients": [{"emailAddress": "recipient@example.com"}],
               "timestamp": "2016-01-27T14:59:38.237Z",
               "feedbackId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000"},
    "mail": {"timestamp": "2016-01-27T14:59:38.237Z", "source": "john@example.com",
             "messageId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000",
             "destination": ["recipient@example.com"]},
}

# --- Resend: one POST per event -------------------------------------------------------

_RS_DATA = {
    "broadcast_id": "8b146471-e88e-4322-86af-016cd36fd216",
    "created_at": "2024-11-22T23:41:11.894719+00:00",
    "email_id": "56761188-7520-42d8-8898-ff6fc54ce618",
    "from": "Acme <onboarding@resend.dev>", "to": ["delivered@resend.dev"],
    "subject": "Sending this example", "template_id": "43f68331-0622-4e15-8202-246a0388854b",
    "tags": {"category": "confirm_email", "campaign_id": "spring-sale"},
}


def resend(kind: str, created_at: str = "2024-11-22T23:41:12.126Z", **data: object) -> dict:
    return {"type": kind, "created_at": created_at,
            "data": {**copy.deepcopy(_RS_DATA), **data}}


RESEND_EVENTS = [
    ("send", resend("email.sent")),
    ("delivered", resend("email.delivered")),
    ("open", resend("email.opened", "2024-11-23T05:00:57.163Z")),
    ("click", resend("email.clicked", "2024-11-24T05:00:57.263Z", click={
        "ipAddress": "122.115.53.11", "link": "https://resend.com",
        "timestamp": "2024-11-24T05:00:57.163Z",
        "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
                     "(KHTML, like Gecko) Version/16.1 Safari/605.1.15"})),
    ("bounce", resend("email.bounced", bounce={
        "message": "The recipient's email address is on the suppression list because it has "
                   "a recent history of producing hard bounces.",
        "subType": "Suppressed", "type": "Permanent"})),
    ("complaint", resend("email.complained")),
    (None, resend("email.delivery_delayed")),
    (None, resend("email.failed", failed={"reason": "reached_daily_quota"})),
    (None, resend("email.bounced", bounce={"message": "Mailbox full", "subType": "MailboxFull",
                                          "type": "Transient"})),
    (None, {"type": "contact.updated", "created_at": "2024-11-17T19:32:22.980Z",
            "data": {"id": "e169aa45-1ecf-4183-9955-b1499d5701d3",
                     "audience_id": "78261eea-8f8b-4381-83c6-79fa7120f1cf",
                     "created_at": "2024-11-17T19:32:22.980Z", "email": "steve@example.com",
                     "unsubscribed": True}}),
    (None, {"type": "domain.updated", "created_at": "2024-11-17T19:32:22.980Z",
            "data": {"id": "d91cd9bd-1176-453e-8fc1-35364d380206", "name": "example.com"}}),
]
