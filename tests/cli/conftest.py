"""Shared fixtures of the CLI tests."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _builtin_extractors_only(builtin_extractors_only):
    """The generated bad-input table must not depend on which tests ran first in this worker."""
