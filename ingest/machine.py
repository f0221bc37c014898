"""Machine (non-human) opens and clicks: the `machine` event flag and user-agent classification.

An event counts as machine when its `machine` field says so (set by producers / webhook
receivers from provider flags such as SendGrid's `sg_machine_open`) OR when its `user_agent`
is a known bot, image proxy, link scanner or HTTP library.

The lists are Matomo's Device Detector (regexes/bots.yml and regexes/client/libraries.yml,
~840 bot and ~150 library entries, released every few weeks), through its maintained Python
port `device-detector`. Chosen by measurement over crawler-user-agents, crawlerdetect, is-bot
(isbot), ua-parser and user-agents on tests/fixtures/user_agents.tsv and on ~40,000 further real
strings: no false positive on real mail clients, very few on browsers (9 of ~36,700), the best
recall of the lists that keep mail clients human, and ~5 us per uncached human string.
docs/user_agents.md has the numbers and the command.

`_MAIL_SUPPLEMENT` adds a few mail-specific machine user agents that the lists miss, each with
its source. It supplements the maintained lists and does not replace them: new bots arrive by
upgrading the pinned package. Known limit (see docs/user_agents.md): scanners that send an
ordinary browser user agent (Microsoft Defender/Safe Links, Proofpoint, Mimecast, Barracuda ESS)
cannot be told from a person by the string alone.
"""

from __future__ import annotations

import re
from functools import lru_cache

from device_detector.parser import Bot, Library

# Mail-specific machine user agents that device-detector 6.5.1 does not match.
# Case-sensitive. Every entry names its source.
_MAIL_SUPPLEMENT = re.compile(
    "|".join(
        (
            # Apple Mail Privacy Protection's proxy sends the bare token and nothing else (since
            # 2021-09-20): github.com/ua-parser/uap-core/issues/509. No browser or mail client
            # sends exactly this; Apple Mail itself sends "Mozilla/5.0 (Macintosh; ...) ...".
            r"^Mozilla/5\.0$",
            # Gmail prefetches images on delivery to an open Gmail session with a fixed Edge 12
            # string followed by a second "Mozilla/5.0" (SparkPost/Bird,
            # bird.com/blog/gmail-prefetching-images;
            # github.com/jdavidbakr/mail-tracker/issues/255). A real Edge 12 ends at "Edge/12.246".
            r"Edge/12\.246 Mozilla/5\.0$",
            # Gmail link checks, "... Edge/12.246 Gmail-content-sampling"
            # (github.com/mssola/user_agent/issues/71), and Gmail's one-click unsubscribe,
            # "(KHTML, like Gecko; Gmail Actions)" (suped.com, "What does the Gmail Actions user
            # agent in unsubscribe requests indicate").
            r"Gmail-content-sampling",
            r"; Gmail Actions\)",
            # Norton Safe Web URL-reputation fetcher (a link scanner):
            # JayBizzle/Crawler-Detect tests/data/user_agent/crawlers.txt.
            r"^Norton-Safeweb",
            # Headless Chrome, used by scanning sandboxes; Device Detector reports it as the browser
            # "Headless Chrome" rather than as a bot. monperrus/crawler-user-agents pattern
            # "HeadlessChrome" (tag browser-automation).
            r"HeadlessChrome/",
        )
    )
)


@lru_cache(maxsize=65536)
def _classify(user_agent: str) -> bool:
    if _MAIL_SUPPLEMENT.search(user_agent) is not None:
        return True
    if Bot(user_agent, None).parse().is_bot():
        return True
    # HTTP client libraries (curl, python-requests, Go-http-client, okhttp, axios, PhantomJS...)
    return Library(user_agent, None).parse().matched_regex is not None


def is_machine_user_agent(user_agent: str) -> bool:
    """True when the user agent is a known bot, mail image proxy, link scanner or HTTP library.

    Empty (or missing) user agents are not evidence of a machine: False. Surrounding whitespace
    is ignored. Results are cached (bounded LRU of 65,536 distinct strings) because user agents
    repeat heavily across events.
    """
    if not user_agent:
        return False
    user_agent = user_agent.strip()
    if not user_agent:
        return False
    return _classify(user_agent)


_FLAG_STRINGS = {"true": True, "false": False, "1": True, "0": False}


def parse_machine_flag(value: object) -> bool | None:
    """Parse the optional event field `machine`.

    Accepts booleans, the integers 0/1, and the strings "true"/"false" (any case) and "0"/"1".
    Anything else (other numbers, floats, null, other strings, containers) returns None,
    meaning invalid. An absent field is the caller's business (the contract's default is false).
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return {0: False, 1: True}.get(value)
    if isinstance(value, str):
        return _FLAG_STRINGS.get(value.lower())
    return None
