"""Who may call what: the one table of path/method -> scope, and the decision for one request.

Every route is covered by default: a path no rule names needs an `admin` key, so an endpoint added
later is protected before anyone thinks about it. Rules are tried in order; the first match wins.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

from server.security.keys import ApiKey, KeyStore, KeyStoreError, Scope

Need = Literal["public", "inference", "admin"]

_WRITE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Rule:
    """Requests whose path matches `pattern` (and whose method is in `methods`, if given) need `need`."""

    pattern: re.Pattern[str]
    need: Need
    methods: frozenset[str] | None = None

    def matches(self, method: str, path: str) -> bool:
        """Whether this rule applies to `method path`."""
        return (self.methods is None or method in self.methods) and self.pattern.fullmatch(path) is not None


def rule(pattern: str, need: Need, methods: frozenset[str] | None = None) -> Rule:
    """A rule from a regular expression over the whole path."""
    return Rule(re.compile(pattern), need, methods)


# The table. /health stays public so that probes (systemd, Kubernetes, load balancers) need no key;
# it says only whether each model is up. The OpenAPI document and its UI are public: they describe
# the API, they do not use it. /metrics needs a key of any scope (Prometheus sends bearer tokens).
RULES: tuple[Rule, ...] = (
    rule(r"/health", "public", frozenset({"GET", "HEAD"})),
    rule(r"/openapi\.json", "public", frozenset({"GET", "HEAD"})),
    rule(r"/docs(/.*)?", "public", frozenset({"GET", "HEAD"})),
    # The console's page and assets are public: they hold no data; the page asks for a key and
    # calls the API with it like any other client.
    rule(r"/|/console/.+", "public", frozenset({"GET", "HEAD"})),
    rule(r"/metrics", "inference", frozenset({"GET", "HEAD"})),
    rule(r"/v1/hub(/.*)?", "admin"),
    rule(r"/v1/keys(/.*)?", "admin"),
    rule(r"/v1/settings(/.*)?", "admin"),
    rule(r"/v1/tuning(/.*)?", "admin"),
    # Running a workflow is inference; defining, changing or deleting one is admin.
    rule(r"/v1/workflows/[^/]+/runs?(/.*)?", "inference"),
    rule(r"/v1/workflows(/[^/]+)?", "admin", _WRITE),
    rule(r"/v1/workflows(/.*)?", "inference", frozenset({"GET", "HEAD"})),
    # The OpenAI endpoints, Anthropic's /v1/messages, and the read-only status of the server.
    rule(r"/v1/(chat/completions|completions|embeddings|responses|rerank|tokenize|detokenize)(/.*)?", "inference"),
    rule(r"/v1/(files|batches)(/.*)?", "inference"),
    rule(r"/v1/messages(/count_tokens)?", "inference", frozenset({"POST"})),
    rule(r"/v1/(models|status|system)(/.*)?", "inference", frozenset({"GET", "HEAD"})),
    # llama.cpp's and vLLM's unversioned aliases, and Cohere's /v2/rerank.
    rule(r"/(tokenize|detokenize|rerank)|/v2/rerank", "inference"),
    # Ollama's API: the version probe is public as /health is; running and listing models is
    # inference; pull, delete, copy, create and blobs change the hub, so they need admin (the default).
    rule(r"/api/version", "public", frozenset({"GET", "HEAD"})),
    rule(r"/api/(chat|generate|embed|embeddings|show)", "inference", frozenset({"POST"})),
    rule(r"/api/(tags|ps)", "inference", frozenset({"GET", "HEAD"})),
)
DEFAULT_NEED: Need = "admin"


def required_scope(method: str, path: str, rules: tuple[Rule, ...] = RULES) -> Need:
    """What `method path` needs; preflight (OPTIONS) requests are public: browsers send no
    credentials with them and they run no handler."""
    if method == "OPTIONS":
        return "public"
    for candidate in rules:
        if candidate.matches(method, path):
            return candidate.need
    return DEFAULT_NEED


def presented_key(headers: dict[bytes, bytes]) -> str | None:
    """The key of `Authorization: Bearer <key>` or `x-api-key: <key>`, if any."""
    auth = headers.get(b"authorization")
    if auth is not None:
        scheme, _, value = auth.decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    api_key = headers.get(b"x-api-key")
    if api_key is not None and api_key.strip():
        return api_key.decode("latin-1").strip()
    return None


def is_loopback(host: str | None) -> bool:
    """Whether `host` (an address or `localhost`) is this machine."""
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Denied:
    """Why a request is refused: status 401 or 403 and OpenAI's error fields."""

    status: int
    message: str
    code: str | None


@dataclass(frozen=True)
class Decision:
    """The outcome of authentication: the key used (None when none was needed) or the refusal."""

    key: ApiKey | None = None
    denied: Denied | None = None


_NO_KEY = Denied(
    401,
    "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY' (or 'x-api-key'); "
    "create one with `hearth keys create`.",
    "invalid_api_key",
)


class Authenticator:
    """Decides each request against the key store and the scope table."""

    def __init__(self, store: KeyStore, insecure: bool = False, metrics_public: bool = False) -> None:
        self.store = store
        self.insecure = insecure
        # The Gateway API Inference Extension's endpoint picker scrapes /metrics with no credentials.
        self.metrics_public = metrics_public

    def decide(self, method: str, path: str, headers: dict[bytes, bytes], client: str | None) -> Decision:
        """Authenticate one request. With no keys, only loopback clients are served (unless the
        server was started with --insecure); once a key exists, every request needs one. An
        unreadable key file refuses everything (503) rather than letting anything through."""
        need = required_scope(method, path)
        if need == "public" or (self.metrics_public and path == "/metrics" and method in ("GET", "HEAD")):
            return Decision()
        try:
            return self._decide(need, method, path, headers, client)
        except KeyStoreError:
            return Decision(denied=Denied(503, "The server's API key file is unreadable; see its log.", None))

    def _decide(self, need: Need, method: str, path: str, headers: dict[bytes, bytes], client: str | None) -> Decision:
        if not self.store.any_active():
            if self.insecure or is_loopback(client):
                return Decision()
            return Decision(
                denied=Denied(401, "No API keys are configured: this server only serves loopback clients.", None)
            )
        presented = presented_key(headers)
        if presented is None:
            return Decision(denied=_NO_KEY)
        key = self.store.authenticate(presented)
        if key is None:
            shown = presented[:7] + "*" * 4 + presented[-4:] if len(presented) > 12 else "****"
            return Decision(denied=Denied(401, f"Incorrect API key provided: {shown}.", "invalid_api_key"))
        if key.expired():
            return Decision(denied=Denied(401, f"The API key {key.name!r} has expired.", "invalid_api_key"))
        scope: Scope = "admin" if need == "admin" else "inference"
        if not key.allows(scope):
            return Decision(
                key=key,
                denied=Denied(403, f"The API key {key.name!r} (scope {key.scope}) may not call {method} {path}.", None),
            )
        return Decision(key=key)
