"""Typed errors, raised in the layer and turned into the pinned error JSON in one place (`api.py`).

Each class carries its pinned `code` and HTTP status; nothing matches on message strings.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    code = "internal_error"
    http_status = 500

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class InvalidRequest(ServiceError):
    """Bad input from our caller: nothing was sent to the provider."""

    code = "invalid_request"
    http_status = 400


class TooManyJobs(ServiceError):
    """The caller (or the whole stack) already runs as many bulk jobs as it may: ask again after `retry_after` s."""

    code = "too_many_jobs"
    http_status = 429

    def __init__(self, message: str, details: Any = None, retry_after: int = 30) -> None:
        super().__init__(message, details)
        self.retry_after = retry_after


class ProviderError(ServiceError):
    """The provider answered, with an error (or with something we cannot read)."""

    code = "provider_error"
    http_status = 502

    def __init__(
        self,
        provider: str,
        message: str,
        provider_code: str | None = None,
        provider_description: str | None = None,
        http_status: int | None = None,
    ) -> None:
        details = {"provider": provider, "provider_code": provider_code, "provider_description": provider_description}
        if http_status is not None:
            details["http_status"] = http_status
        super().__init__(message, details)
        self.provider = provider
        self.provider_code = provider_code
        self.provider_description = provider_description


class ProviderTimeout(ServiceError):
    code = "provider_timeout"
    http_status = 504

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(message, {"provider": provider})
        self.provider = provider


class ProviderUnavailable(ServiceError):
    """Connection refused or reset, TLS failure, 429 or 5xx after the bounded retries."""

    code = "provider_unavailable"
    http_status = 503

    def __init__(self, provider: str, message: str, http_status: int | None = None) -> None:
        details: dict[str, Any] = {"provider": provider}
        if http_status is not None:
            details["http_status"] = http_status
        super().__init__(message, details)
        self.provider = provider


class CredentialsError(ServiceError):
    """A secret is missing or malformed. The message names the secret, never its value."""

    code = "credentials_error"
    http_status = 503


class ProviderAuthError(CredentialsError):
    """The provider refused our credentials. The caller re-reads the secret once (rotation) and retries."""

    def __init__(self, provider: str, message: str, provider_code: str | None = None, provider_description: str | None = None) -> None:
        super().__init__(
            message,
            {"provider": provider, "provider_code": provider_code, "provider_description": provider_description},
        )
        self.provider = provider
