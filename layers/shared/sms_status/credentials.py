"""Provider credentials from Secrets Manager, through AWS's Parameters and Secrets Lambda Extension.

The extension (a layer of the functions, template.yaml) serves `GET /secretsmanager/get?secretId=...` on
localhost and calls Secrets Manager with the function's role. Asking it over HTTP keeps boto3 off the lookup path:
building a Secrets Manager client costs about as much as the whole rest of a cold start (README "Design notes").
`make run` and the tests serve the same endpoint from moto (`local.secrets_extension`), so every path reads the
secret the same way.

- One cache, here: a fetched secret is reused for `max_age` seconds (SECRET_MAX_AGE). The extension's own cache
  is off (template.yaml), so a re-read asked for is a real one.
- A secret is fetched again, once, when the provider refuses it (rotation): see `lookup.StatusService`.
- A read takes at most `READ_BUDGET` seconds (short timeouts, two attempts), which the lookup keeps room for
  before it re-reads a refused secret.
- Errors name the secret, never its value; nothing here logs.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from urllib3 import HTTPConnectionPool, Timeout
from urllib3.exceptions import HTTPError

from .errors import CredentialsError

SECRETS_CONNECT_TIMEOUT = 1.0
SECRETS_READ_TIMEOUT = 2.0
SECRETS_ATTEMPTS = 2
READ_BUDGET = SECRETS_ATTEMPTS * (SECRETS_CONNECT_TIMEOUT + SECRETS_READ_TIMEOUT)

# The extension's contract (AWS documents these names): its port, and the header carrying the function's session
# token, which it requires of every request (so that nothing else on the host can use it to read secrets).
EXTENSION_PORT_VARIABLE = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"
DEFAULT_EXTENSION_PORT = 2773
TOKEN_HEADER = "X-Aws-Parameters-Secrets-Token"  # noqa: S105 - a header name, not a secret
# Answers worth a second attempt: the extension or Secrets Manager behind it failed, not our request.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

# Values travel in HTTP headers (Wooxy, WWT): a newline or NUL would corrupt or split the request.
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f]")


def secret_fields(value: object, secret_name: str, keys: tuple[str, ...], forbidden: re.Pattern[str] = CONTROL_CHARACTERS) -> list[str]:
    """The `keys` of a provider secret, in order: a JSON object (or its text) whose values are non-empty strings
    free of `forbidden` characters. Errors name the secret and the key, never a value."""
    shape = "{" + ", ".join(f'"{key}": "..."' for key in keys) + "}"
    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except ValueError:
            raise CredentialsError(f"secret {secret_name} is not valid JSON", {"secret": secret_name}) from None
    if not isinstance(value, Mapping):
        raise CredentialsError(f"secret {secret_name} must be a JSON object {shape}", {"secret": secret_name})
    fields = []
    for key in keys:
        item = value.get(key)
        if not isinstance(item, str) or not item.strip():
            raise CredentialsError(f"secret {secret_name} has no usable {key} (a non-empty string)", {"secret": secret_name, "key": key})
        if forbidden.search(item):
            raise CredentialsError(f"secret {secret_name}: {key} holds characters it cannot carry", {"secret": secret_name, "key": key})
        fields.append(item)
    return fields


class SecretCache:
    """Fetched secret strings per name, with when they were fetched (monotonic). One per process, like a Lambda
    container's memory; `clear()` forgets them (tests, and the local run's "new container")."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[str, float]] = {}

    def fresh(self, name: str, max_age: float) -> str | None:
        with self._lock:
            entry = self._entries.get(name)
        if entry is None or self.clock() - entry[1] >= max_age:
            return None
        return entry[0]

    def put(self, name: str, value: str) -> None:
        with self._lock:
            self._entries[name] = (value, self.clock())

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


SECRETS = SecretCache()


def clear_caches() -> None:
    """Forget every fetched secret (what a new container would not have)."""
    SECRETS.clear()


_pool: HTTPConnectionPool | None = None


def _extension_pool(port: int) -> HTTPConnectionPool:
    """The one connection pool to the extension (kept while the container is warm). No retries of its own:
    `fetch_secret` counts the attempts."""
    global _pool
    if _pool is None or _pool.port != port:
        # "localhost", as AWS documents the endpoint (resolved from /etc/hosts, no DNS query).
        _pool = HTTPConnectionPool(
            "localhost", port, maxsize=2, timeout=Timeout(connect=SECRETS_CONNECT_TIMEOUT, read=SECRETS_READ_TIMEOUT), retries=False
        )
    return _pool


def extension_port() -> int:
    raw = os.environ.get(EXTENSION_PORT_VARIABLE, "")
    try:
        port = int(raw) if raw.strip() else DEFAULT_EXTENSION_PORT
    except ValueError:
        raise CredentialsError(f"{EXTENSION_PORT_VARIABLE} must be a port number") from None
    if not 0 < port < 65536:
        raise CredentialsError(f"{EXTENSION_PORT_VARIABLE} must be a port number")
    return port


def fetch_secret(secret_name: str) -> str:
    """The secret's current SecretString, from the extension: at most SECRETS_ATTEMPTS attempts, each bounded by
    the connect and read timeouts. Any failure is a CredentialsError naming the secret (and the extension's HTTP
    status when it answered), never the value."""
    pool = _extension_pool(extension_port())
    headers = {TOKEN_HEADER: os.environ.get("AWS_SESSION_TOKEN", "")}
    url = f"/secretsmanager/get?secretId={quote(secret_name, safe='')}"
    details: dict[str, Any] = {}
    for attempt in range(SECRETS_ATTEMPTS):
        last = attempt == SECRETS_ATTEMPTS - 1
        try:
            response = pool.request("GET", url, headers=headers, preload_content=True)
        except HTTPError:  # refused, reset or timed out
            details = {"secret": secret_name, "reason": "no answer from the secrets extension"}
            if last:
                break
            continue
        if response.status == 200:
            return _secret_string(response.data, secret_name)
        details = {"secret": secret_name, "http_status": response.status}
        if response.status not in RETRY_STATUSES or last:
            break
    raise CredentialsError(f"secret {secret_name} cannot be read", details)


def _secret_string(body: bytes, secret_name: str) -> str:
    """SecretString of the extension's answer (Secrets Manager's GetSecretValue response, as JSON)."""
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    value = answer.get("SecretString") if isinstance(answer, dict) else None
    if not isinstance(value, str):
        raise CredentialsError(f"secret {secret_name} cannot be read (no SecretString in the answer)", {"secret": secret_name})
    return value


class SecretSource[T]:
    read_budget = READ_BUDGET  # the longest one read may take

    def __init__(self, secret_name: str, max_age: int, parse: Callable[[Any, str], T], fetch: Callable[[str], str] = fetch_secret) -> None:
        self.secret_name = secret_name
        self.max_age = max_age
        self._parse = parse
        self._fetch = fetch

    def get(self, *, refresh: bool = False) -> T:
        value = None if refresh else SECRETS.fresh(self.secret_name, self.max_age)
        if value is None:
            value = self._fetch(self.secret_name)
            try:
                parsed = json.loads(value)
            except ValueError:
                raise CredentialsError(f"secret {self.secret_name} is not valid JSON", {"secret": self.secret_name}) from None
            result = self._parse(parsed, self.secret_name)  # a secret we cannot use is not kept
            SECRETS.put(self.secret_name, value)
            return result
        return self._parse(json.loads(value), self.secret_name)
