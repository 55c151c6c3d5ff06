"""Stop sequences matched on decoded text, so streamed and whole answers stop at the same place."""

from __future__ import annotations


class StopMatcher:
    """Finds the first stop string in a stream of text pieces.

    Text that could still be the start of a stop string is held back until the next piece shows
    whether it is one: a client never sees part of a stop sequence.
    """

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._held = ""
        self.matched = False
        # The stop string found (the Anthropic dialect reports it as `stop_sequence`).
        self.stop: str | None = None

    def feed(self, text: str) -> str:
        """Add decoded text; return what can be released to the client now."""
        if self.matched:
            return ""
        if not self._stops:
            return text
        buffer = self._held + text
        found = [(i, s) for s in self._stops if (i := buffer.find(s)) >= 0]
        if found:
            cut, self.stop = min(found, key=lambda hit: hit[0])
            self.matched = True
            self._held = ""
            return buffer[:cut]
        keep = self._partial_suffix(buffer)
        self._held = buffer[len(buffer) - keep :] if keep else ""
        return buffer[: len(buffer) - keep]

    def flush(self) -> str:
        """Release held-back text at the end of generation (it turned out not to be a stop)."""
        held, self._held = self._held, ""
        return "" if self.matched else held

    def _partial_suffix(self, buffer: str) -> int:
        """Length of the longest suffix of `buffer` that is a proper prefix of a stop string."""
        best = 0
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(buffer)), best, -1):
                if buffer.endswith(stop[:n]):
                    best = n
                    break
        return best
