"""The context budget every backend checks before it queues a request (pure)."""

from __future__ import annotations

from adapters.budget import new_token_budget


def test_a_default_cap_is_cut_to_the_context_and_never_refused() -> None:
    assert new_token_budget(1, 10, 100, None) == 90
    assert new_token_budget(1, 10, 100, None, default=20) == 20
    assert new_token_budget(1, 90, 100, None, default=20) == 10  # cut, not a 400
    assert new_token_budget(1, 10, 100, 50, default=20) == 50  # an explicit max_tokens wins


def test_an_explicit_max_tokens_past_the_context_is_refused() -> None:
    refused = new_token_budget(1, 90, 100, 20, default=5)
    assert isinstance(refused, list) and refused[0].error is not None
    assert refused[0].error.code == "context_length_exceeded"
