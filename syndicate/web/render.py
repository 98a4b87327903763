"""(to be written)"""

from __future__ import annotations

from syndicate.config import Settings


class WebPages:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
