"""Where the serving cache loads from: ClickHouse, through the API's query pool."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from api.query import QueryPool
from rollup.clickhouse import load_sql

SQL_DIR = Path(__file__).resolve().parent / "sql"
# RowBinary rows of sql/campaign_events.sql; strings travel as cityHash64 and are joined
# with sql/campaign_strings.sql (a hash collision fails the load: SQL answers instead).
ROW = np.dtype([("campaign", "<u4"), ("ts", "<u4"), ("kind", "u1"), ("recipient", "<u8"),
                ("email", "<u8"), ("link", "<u8"), ("machine", "u1")])


class Source(Protocol):
    def campaign_events(self, campaign_ids: Sequence[str]) -> bytes:
        """RowBinary rows of ROW for these campaigns (`campaign` = 1-based position)."""

    def campaign_strings(self, campaign_ids: Sequence[str]) -> list[tuple[str, int, str]]:
        """(column, cityHash64, value) of every distinct recipient_id ('recipient'),
        recipient_email ('email') and link_url ('link') of these campaigns."""

    def recent_campaigns(self, limit: int) -> list[tuple[str, int]]:
        """(campaign_id, events), most recently active first."""

    def all_campaigns(self) -> list[str]:
        """Every campaign_id stored."""


class ClickHouseSource:
    """The cache's reads, through the API's query pool."""

    def __init__(self, pool: QueryPool) -> None:
        self.pool = pool

    def campaign_events(self, campaign_ids: Sequence[str]) -> bytes:
        with self.pool.client() as client:
            return client.raw_query(load_sql(SQL_DIR / "campaign_events.sql"),
                                    parameters={"campaign_ids": list(campaign_ids)},
                                    fmt="RowBinary")

    def campaign_strings(self, campaign_ids: Sequence[str]) -> list[tuple[str, int, str]]:
        with self.pool.client() as client:
            result = client.query(load_sql(SQL_DIR / "campaign_strings.sql"),
                                  parameters={"campaign_ids": list(campaign_ids)})
        return result.result_rows

    def recent_campaigns(self, limit: int) -> list[tuple[str, int]]:
        with self.pool.client() as client:
            result = client.query(load_sql(SQL_DIR / "recent_campaigns.sql"),
                                  parameters={"limit": limit})
        return [(campaign_id, int(events)) for campaign_id, events in result.result_rows]

    def all_campaigns(self) -> list[str]:
        with self.pool.client() as client:
            result = client.query(load_sql(SQL_DIR / "all_campaigns.sql"))
        return [row[0] for row in result.result_rows]
