"""Provider credentials from Secrets Manager, through Powertools parameters (cached with a max age).

A secret is fetched again, once, when the provider refuses it (rotation): see `lookup.StatusService`.
Errors name the secret, never its value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import CredentialsError


class SecretSource[T]:
    def __init__(self, secret_name: str, max_age: int, parse: Callable[[Any, str], T]) -> None:
        self.secret_name = secret_name
        self.max_age = max_age
        self._parse = parse

    def get(self, *, refresh: bool = False) -> T:
        # Imported here: parameters pulls in boto3 (~70 ms), which the cold import does not need.
        from aws_lambda_powertools.utilities import parameters
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError

        try:
            value = parameters.get_secret(self.secret_name, transform="json", max_age=self.max_age, force_fetch=refresh)
        except TransformParameterError as exc:
            raise CredentialsError(f"secret {self.secret_name} is not valid JSON", {"secret": self.secret_name}) from exc
        except GetParameterError as exc:
            raise CredentialsError(f"secret {self.secret_name} cannot be read", {"secret": self.secret_name}) from exc
        return self._parse(value, self.secret_name)
