"""Shared fixtures of the CLI tests."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _builtin_extractors_only(monkeypatch):
    """Messages list the registered extractors: hide the ones other tests register for the session
    in this worker ("test-..."), so the generated bad-input table does not depend on test order."""
    from ambient_eval.features import registry

    monkeypatch.setattr(registry, "_REGISTRY",
                        {k: v for k, v in registry._REGISTRY.items() if not k.startswith("test-")})
