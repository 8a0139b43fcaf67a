"""Named reference statistics (`ref:NAME`): the catalog, safe readers of each publisher's format, and
resolution to a local file (library caches, the download cache, else fetched on first use)."""
from __future__ import annotations

REF_PREFIX = "ref:"
