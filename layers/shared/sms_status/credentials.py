"""Provider credentials from Secrets Manager, through Powertools parameters (cached with a max age).

A secret is fetched again, once, when the provider refuses it (rotation): see `lookup.StatusService`.
Errors name the secret, never its value.

Secrets Manager is read with short timeouts and two attempts (botocore's defaults are 60 s + 60 s and more
attempts, longer than the whole function may run): a read takes at most `READ_BUDGET` seconds, which the
lookup keeps room for before it re-reads a refused secret.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from .errors import CredentialsError

SECRETS_CONNECT_TIMEOUT = 1.0
SECRETS_READ_TIMEOUT = 2.0
SECRETS_ATTEMPTS = 2
READ_BUDGET = SECRETS_ATTEMPTS * (SECRETS_CONNECT_TIMEOUT + SECRETS_READ_TIMEOUT)

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


def _bounded_provider() -> None:
    """Make Powertools' default secrets provider one whose client has short timeouts. It stays the default, so
    `parameters.clear_caches()` (which drops the default providers) forgets its cache too."""
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
    from botocore.config import Config

    if not getattr(DEFAULT_PROVIDERS.get("secrets"), "_bounded", False):
        config = Config(
            connect_timeout=SECRETS_CONNECT_TIMEOUT,
            read_timeout=SECRETS_READ_TIMEOUT,
            retries={"total_max_attempts": SECRETS_ATTEMPTS, "mode": "standard"},
        )
        provider = parameters.SecretsProvider(boto_config=config)
        provider._bounded = True  # type: ignore[attr-defined]
        DEFAULT_PROVIDERS["secrets"] = provider


class SecretSource[T]:
    read_budget = READ_BUDGET  # the longest one read may take

    def __init__(self, secret_name: str, max_age: int, parse: Callable[[Any, str], T]) -> None:
        self.secret_name = secret_name
        self.max_age = max_age
        self._parse = parse

    def prepare(self) -> None:
        """Build the Secrets Manager client now (a cold start), not inside the first lookup's deadline."""
        _bounded_provider()

    def get(self, *, refresh: bool = False) -> T:
        # Imported here: parameters pulls in boto3 (~70 ms), which the cold import does not need.
        from aws_lambda_powertools.utilities import parameters
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError

        _bounded_provider()
        try:
            value = parameters.get_secret(self.secret_name, transform="json", max_age=self.max_age, force_fetch=refresh)
        except TransformParameterError as exc:
            raise CredentialsError(f"secret {self.secret_name} is not valid JSON", {"secret": self.secret_name}) from exc
        except GetParameterError as exc:
            raise CredentialsError(f"secret {self.secret_name} cannot be read", {"secret": self.secret_name}) from exc
        return self._parse(value, self.secret_name)
