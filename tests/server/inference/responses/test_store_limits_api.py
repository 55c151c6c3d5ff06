"""The Responses store's bounds on a real server through the official client: `metadata` bounded as
OpenAI bounds it (16 pairs, 64-character keys, 512-character values), and the store by bytes as well
as by count, so stored responses cannot grow the server's memory without end."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import openai
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from tests.conftest import DEFAULT_MODEL, HearthServer, run_hearth

STORE_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    """A server of its own with a small byte budget for stored responses."""
    home = tmp_path_factory.mktemp("hearth-responses-store")
    with run_hearth(home, "--responses-store-max-bytes", str(STORE_BYTES)) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: HearthServer) -> Iterator[openai.OpenAI]:
    """The official client on the module's server."""
    with server.openai_client() as sdk:
        yield sdk


KEYS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=64)
VALUES = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=512)
TOO_MANY = st.dictionaries(KEYS, VALUES, min_size=17, max_size=40)
LONG_KEY = st.builds(
    lambda key, base: {**base, key: "v"},
    st.text(alphabet="abcdefghij", min_size=65, max_size=5000),
    st.dictionaries(KEYS, VALUES, max_size=15),
)
LONG_VALUE = st.builds(
    lambda value, base: {**base, "k": value},
    st.text(alphabet="xyz ", min_size=513, max_size=200_000),
    st.dictionaries(KEYS, VALUES, max_size=15),
)


def test_metadata_past_openai_bounds_is_refused_at_once(client: openai.OpenAI) -> None:
    @given(metadata=st.one_of(TOO_MANY, LONG_KEY, LONG_VALUE))
    @settings(max_examples=20, deadline=None, database=None, phases=[Phase.explicit, Phase.generate])
    def examples(metadata: dict[str, str]) -> None:
        start = time.perf_counter()
        with pytest.raises(openai.BadRequestError) as refused:
            client.responses.create(
                model=DEFAULT_MODEL, input="Hi", metadata=metadata, temperature=0, max_output_tokens=2
            )
        assert time.perf_counter() - start < 1.0
        assert refused.value.status_code == 400
        message = str(refused.value.body)
        assert "metadata" in message and ("<= 16" in message or "<= 64" in message or "<= 512" in message), message

    examples()


def test_metadata_within_bounds_is_kept(client: openai.OpenAI) -> None:
    metadata = {f"k{i:02d}" + "x" * 60: "v" * 512 for i in range(16)}
    response = client.responses.create(
        model=DEFAULT_MODEL, input="Hi", metadata=metadata, temperature=0, max_output_tokens=2
    )
    assert response.metadata == metadata
    assert client.responses.retrieve(response.id).metadata == metadata


def test_the_store_is_bounded_by_bytes(client: openai.OpenAI) -> None:
    # Each response carries ~9 KB of metadata: the budget holds a handful, not all of them.
    metadata = {f"k{i:02d}": "v" * 512 for i in range(16)}
    ids = [
        client.responses.create(
            model=DEFAULT_MODEL, input=f"Say {i}.", metadata=metadata, temperature=0, max_output_tokens=2
        ).id
        for i in range(12)
    ]
    kept = []
    for response_id in ids:
        with contextlib.suppress(openai.NotFoundError):
            kept.append(client.responses.retrieve(response_id).id)
    assert kept and kept == ids[-len(kept) :], (kept, ids)
    assert len(kept) * 9 * 1024 <= STORE_BYTES
    assert len(kept) < len(ids)
    # A follow-up to a forgotten response is a 404 naming the parameter, as for any unknown id.
    with pytest.raises(openai.NotFoundError) as forgotten:
        client.responses.create(
            model=DEFAULT_MODEL, input="And?", previous_response_id=ids[0], temperature=0, max_output_tokens=2
        )
    assert "previous_response_id" in str(forgotten.value.body)
