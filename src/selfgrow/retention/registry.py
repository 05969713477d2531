"""Registry of retention strategies: names -> classes, and `build_retention` with clear errors."""

from __future__ import annotations

from selfgrow.registry import Registry

RETENTION = Registry("retention strategy")
register_retention = RETENTION.register
build_retention = RETENTION.build
