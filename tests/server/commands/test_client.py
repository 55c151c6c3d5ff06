"""The key the client commands send."""

from __future__ import annotations

import pytest

from server.commands.client import auth_headers


def test_no_key_sends_no_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEARTH_API_KEY", raising=False)
    assert auth_headers() == {}


def test_the_key_is_sent_as_a_bearer_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_API_KEY", " hk-abc ")
    assert auth_headers() == {"Authorization": "Bearer hk-abc"}
