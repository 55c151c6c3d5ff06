"""The one exception every limit raises, whatever the dialect: each dialect maps it to its own
error shape (OpenAI's in server/http/errors.py), naming the limit and the setting that sets it."""

from __future__ import annotations


class LimitExceeded(Exception):
    """A request went past a limit: `setting` names it (its flag is `--setting-with-dashes`), `limit`
    is its value, `status` the HTTP status (400, or 413 for sizes) and `param` the offending field."""

    def __init__(self, message: str, *, setting: str, limit: int, param: str | None = None, status: int = 400) -> None:
        super().__init__(f"{message} (the limit is {limit}, setting `{setting}`).")
        self.message = str(self)
        self.setting = setting
        self.limit = limit
        self.param = param
        self.status = status

    @property
    def code(self) -> str:
        """A stable error code naming the limit, e.g. `max_json_depth_exceeded`."""
        return f"{self.setting}_exceeded"
