"""The serving cache: an exact in-memory copy of hot campaigns' events, so that the pipes
answer questions about one campaign (campaign_stats, campaign_timeline,
recipient_activity; all campaigns' campaign_stats when every campaign is held) in
about a millisecond.

Why: one ClickHouse query costs 5-40 ms here however little it reads (planning
dominates, see docs/benchmarks.md), so no SQL plan meets the latency and throughput
targets. The cache keeps, per campaign, its events' epoch second, type code and numbers
for recipient_id, recipient_email and link_url (interned strings, shared by every
campaign: unique counts compare the strings themselves), sorted by time: any
second-precision range is two binary searches and a few vectorized counts. Each event
also carries its recipient's dense number within the campaign, so per-recipient answers
are bincounts. 22 bytes per event (with the machine flag), plus the interned strings.

Exactness rests on three rules:
* it mirrors the raw table: loads read `email_events`, and the worker appends exactly
  the rows it inserted, after the insert succeeded;
* loads and appends both run under the worker's gate, so a batch is either in a load's
  snapshot or appended after it, never both or neither;
* it is active only while this process's worker owns every partition of the topic (the
  sole writer). Recovery, a rebalance, a failed write or a topic replay clears it, and
  anything not cached falls back to SQL.

Layout: store.py holds campaigns (budget, eviction, loads, the worker's batches);
events.py is one campaign's arrays; totals.py keeps every held campaign's running
campaign_stats totals in one table (all-campaign answers without walking each campaign's
events); source.py reads ClickHouse; each pipe module in api/pipes/ computes its own
answer from what `CampaignCache.reading` (or `reading_totals`) hands it.
"""

from api.cache.events import HeldCampaign
from api.cache.source import ClickHouseSource, Source
from api.cache.store import CampaignCache

__all__ = ["CampaignCache", "ClickHouseSource", "HeldCampaign", "Source"]
