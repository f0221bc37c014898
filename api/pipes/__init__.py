"""The published pipes, one module each (its parameters, plan, SQL files beside it, output
columns and serving-cache answer). Add a pipe: write its module and SQL, list it here."""

from __future__ import annotations

from api.pipes import (
    campaign_domains,
    campaign_links,
    campaign_stats,
    campaign_timeline,
    recipient_activity,
)
from api.pipes.base import Param, Pipe, Plan

PIPES: dict[str, Pipe] = {
    module.PIPE.name: module.PIPE
    for module in (campaign_stats, campaign_timeline, recipient_activity, campaign_links,
                   campaign_domains)
}

__all__ = ["PIPES", "Param", "Pipe", "Plan"]
