"""The shared name validator."""

from __future__ import annotations

import pytest

from hub.names import InvalidNameError, check_name, is_valid_name


@pytest.mark.parametrize("name", ["laptop", "smollm2-135m-instruct", "Qwen2.5_7B", "a", "x" * 128])
def test_valid(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".",
        "..",
        "../etc",
        "a/../b",
        "/abs",
        "a/b",
        ".hidden",
        "-flag",
        "a\x00b",
        "a\nb",
        "tab\t",
        "x" * 129,
        "a b",
        "a\\b",
        "\u202e",
        "名前",
    ],
)
def test_invalid_file_names(name: str) -> None:
    assert not is_valid_name(name, "file")
    with pytest.raises(InvalidNameError):
        check_name(name, "workflow")


def test_model_ids_may_have_segments() -> None:
    assert check_name("HuggingFaceTB/SmolLM2-135M-Instruct", "model")
    for bad in ["org/../x", "org//x", "/org/x", "org/x/", "org/.x", "org/\x7fx"]:
        assert not is_valid_name(bad, "model"), bad
