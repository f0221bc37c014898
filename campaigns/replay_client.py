"""`campaigns replay`: through the running server when there is one (it owns the embedded
store), else directly; with a progress bar either way."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from campaigns.compose import token_store
from rollup.config import Settings
from rollup.replay import ReplayRunner


def replay_command(settings: Settings, source: str,
                   echo: Callable[[str], None] = print) -> int:
    """CLI: through the running server if there is one, else directly."""
    import httpx

    base = f"http://{settings.api_host}:{settings.api_port}"
    token = settings.admin_token or token_store(settings).ensure_admin(None)[0].token
    headers = {"Authorization": f"Bearer {token}"}
    try:
        response = httpx.post(f"{base}/v0/admin/replay", params={"source": source},
                              headers=headers, timeout=30)
    except httpx.ConnectError:
        response = None
    if response is None:
        if settings.is_embedded:
            echo("no running server: replaying directly on the data directory")
        else:
            echo("warning: in server mode, stop the workers while replay runs, or events "
                 "ingested meanwhile miss the rebuilt rollups")
        progress = ReplayRunner(settings).start(source)

        def poll_local() -> dict[str, object]:
            time.sleep(0.5)
            return progress.as_dict()

        return _follow(source, progress.as_dict(), poll_local, echo)
    if response.status_code != 202:
        echo(f"replay refused: {response.status_code} {response.text}")
        return 1
    job_id = response.json()["id"]

    def poll_server() -> dict[str, object]:
        time.sleep(0.5)
        return httpx.get(f"{base}/v0/admin/replay/{job_id}", headers=headers,
                         timeout=30).json()

    return _follow(source, response.json(), poll_server, echo)


def _follow(source: str, job: dict[str, object], poll: Callable[[], dict[str, object]],
            echo: Callable[[str], None]) -> int:
    """Show a replay's progress until it ends, then report it."""
    from tqdm import tqdm

    with tqdm(unit="rows", unit_scale=True, desc=f"replay {source}", file=sys.stderr) as bar:
        while job["state"] == "running":
            job = poll()
            bar.total = job["rows_total"] or None
            bar.n = job["rows_done"]
            bar.refresh()
    if job["state"] != "done":
        echo(f"replay failed: {job['error']} (live rollups untouched)")
        return 1
    echo(f"replay from {job['source']} done: {job['rows_done']:,} rows in {job['elapsed']}s "
         f"({job['rows_per_second']:,} rows/s); rollups swapped in")
    return 0
