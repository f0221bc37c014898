"""The published pipes: one .sql file each, parameters typed and bound, never formatted in."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from api.params import ParameterError, date_range, get_string, whole_hours

PIPES_DIR = Path(__file__).resolve().parent / "pipes"


def sql_datetime(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class Pipe:
    name: str
    description: str
    parameters: dict[str, str]  # name -> "Type: description" (for /openapi.json)
    bind: Callable[[Mapping[str, str]], dict[str, object]]

    @property
    def sql_path(self) -> Path:
        return PIPES_DIR / f"{self.name}.sql"


def _bind_range(params: Mapping[str, str]) -> dict[str, object]:
    start, end = date_range(params)
    whole_from, whole_to = whole_hours(start, end)
    return {
        "start_date": sql_datetime(start),
        "end_date": sql_datetime(end),
        "whole_from": sql_datetime(whole_from),
        "whole_to": sql_datetime(whole_to),
    }


def bind_campaign_stats(params: Mapping[str, str]) -> dict[str, object]:
    return {"campaign_id": get_string(params, "campaign_id") or "", **_bind_range(params)}


def require(value: str | None, name: str) -> str:
    if not value:
        raise ParameterError(f"Required parameter is not defined: '{name}'")
    return value


PIPES: dict[str, Pipe] = {
    pipe.name: pipe
    for pipe in (
        Pipe(
            name="campaign_stats",
            description="Per-campaign sends, deliveries, opens, clicks, bounces, complaints, "
            "unsubscribes, unique opens/clicks and rates, newest campaign first.",
            parameters={
                "campaign_id": "String (optional): one campaign",
                "start_date": "DateTime (optional): 'YYYY-MM-DD HH:MM:SS' or 'YYYY-MM-DD', UTC, "
                "inclusive",
                "end_date": "DateTime (optional): inclusive",
            },
            bind=bind_campaign_stats,
        ),
    )
}
