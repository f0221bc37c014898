"""The published pipes, one module each (its parameters, plan, SQL files beside it, output
columns and serving-cache answer). Add a pipe: write its module and SQL, list it here."""

from __future__ import annotations

from api.pipes import campaign_stats, campaign_timeline, recipient_activity
from api.pipes.base import Param, Pipe, Plan

PIPES: dict[str, Pipe] = {
    module.PIPE.name: module.PIPE
    for module in (campaign_stats, campaign_timeline, recipient_activity)
}

__all__ = ["PIPES", "Param", "Pipe", "Plan"]
