"""`campaigns replay`: rebuild rollups (see README). Not built yet: issue #4."""

from __future__ import annotations

import sys

from rollup.config import Settings


def replay_command(settings: Settings, source: str) -> int:
    print(f"campaigns replay --source {source}: not available yet (tracked in issue #4)",
          file=sys.stderr)
    return 2
