"""StopMatcher: stop strings found across piece boundaries, partial matches held back."""

from __future__ import annotations

import pytest

from adapters.stops import StopMatcher


def _run(stops: tuple[str, ...], pieces: list[str]) -> tuple[str, bool]:
    matcher = StopMatcher(stops)
    out = "".join(matcher.feed(piece) for piece in pieces)
    return out + matcher.flush(), matcher.matched


def test_no_stops_passes_text_through() -> None:
    assert _run((), ["a", "b", "c"]) == ("abc", False)


def test_stop_inside_one_piece_cuts_before_it() -> None:
    assert _run(("END",), ["hello END world"]) == ("hello ", True)


def test_stop_split_across_pieces() -> None:
    assert _run(("END",), ["hello E", "N", "D more"]) == ("hello ", True)


def test_partial_match_that_is_not_a_stop_is_released() -> None:
    matcher = StopMatcher(("END",))
    assert matcher.feed("hello EN") == "hello "
    assert matcher.feed("X") == "ENX"
    assert not matcher.matched


def test_partial_match_at_the_end_is_flushed() -> None:
    assert _run(("END",), ["hello EN"]) == ("hello EN", False)


def test_earliest_of_several_stops_wins() -> None:
    assert _run(("b", "a"), ["xxab"]) == ("xx", True)


def test_nothing_after_a_match() -> None:
    matcher = StopMatcher(("\n",))
    assert matcher.feed("one\ntwo") == "one"
    assert matcher.feed("three") == ""
    assert matcher.flush() == ""


@pytest.mark.parametrize("piece_size", [1, 2, 3, 7])
def test_any_split_gives_the_same_answer(piece_size: int) -> None:
    text = "The quick brown fox<|stop|> jumps"
    pieces = [text[i : i + piece_size] for i in range(0, len(text), piece_size)]
    assert _run(("<|stop|>", "zzz"), pieces) == ("The quick brown fox", True)


def test_empty_stop_strings_are_ignored() -> None:
    assert _run(("",), ["abc"]) == ("abc", False)


def test_the_stop_found_is_named() -> None:
    """The earliest stop string in the text is the one reported (Anthropic's `stop_sequence`)."""
    matcher = StopMatcher(("world", "lo w"))
    assert matcher.stop is None
    assert matcher.feed("he") + matcher.feed("llo world") == "hel"
    assert matcher.matched and matcher.stop == "lo w"
