"""Each provider's StatusService, built from its ProviderConfig (`provider_service`) by the functions that call it.

Provider modules are imported only when their service is built, so each function loads only its own
provider's code (and only OpenMarket's pulls in the XML parser).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from .config import ProviderConfig
from .credentials import SecretSource
from .errors import CredentialsError, InvalidRequest, ServiceError
from .http import Deadline, HttpClient
from .lookup import Kind, StatusService, distinct, failed_lookup, gather
from .model import Provider, Report
from .observability import count_lookups, logger


class OpenMarketService(StatusService):
    provider = Provider.OPENMARKET

    def validate(self, key: str, kind: Kind) -> None:
        from .providers.openmarket import validate_ticket_id

        validate_ticket_id(key)

    def fetch_one(self, client: Any, key: str, kind: Kind) -> Report:
        return client.status(key)


class WooxyService(StatusService):
    provider = Provider.WOOXY

    def fetch(self, client: Any, keys: list[str], kind: Kind, deadline: Deadline) -> list[Report]:
        """Up to 100 ids in one request; more are chunks one after another (never in parallel: Wooxy's limit of
        10 concurrent requests is shared by the whole stack). All chunks share the lookup's deadline; a chunk
        that failed gives its ids error reports and the others keep their answers."""
        from .providers.wooxy import MAX_IDS_PER_REQUEST

        chunks = [keys[start : start + MAX_IDS_PER_REQUEST] for start in range(0, len(keys), MAX_IDS_PER_REQUEST)]
        if len(chunks) == 1:
            return client.statuses(keys)
        outcomes: list[Report | ServiceError] = []
        for chunk in chunks:
            try:
                outcomes.extend(client.statuses(chunk))
            except CredentialsError:
                raise  # retried whole with a re-read secret
            except ServiceError as error:
                outcomes.extend([error] * len(chunk))
        return gather(self.provider, keys, outcomes)


class WwtService(StatusService):
    provider = Provider.WWT

    def validate(self, key: str, kind: Kind) -> None:
        from .providers.wwt import validate_id, validate_reference

        (validate_id if kind == "id" else validate_reference)(key)

    def fetch_one(self, client: Any, key: str, kind: Kind) -> Report:
        return client.by_id(key) if kind == "id" else client.by_reference(key)


def build_service(config: ProviderConfig) -> StatusService:
    http = HttpClient(str(config.provider), config.http)
    match config.provider:
        case Provider.OPENMARKET:
            from .providers import openmarket

            secrets = SecretSource(config.secret_name, config.secret_max_age, openmarket.OpenMarketCredentials.from_secret)
            return OpenMarketService(
                secrets,
                lambda creds: openmarket.OpenMarketClient(http, config.base_url, creds, config.openmarket_user_agent),
                config.fan_out,
                config.batch_deadline,
            )
        case Provider.WOOXY:
            from .providers import wooxy

            secrets = SecretSource(config.secret_name, config.secret_max_age, wooxy.WooxyCredentials.from_secret)
            return WooxyService(
                secrets, lambda creds: wooxy.WooxyClient(http, config.base_url, creds), config.fan_out, config.batch_deadline
            )
        case Provider.WWT:
            from .providers import wwt

            secrets = SecretSource(config.secret_name, config.secret_max_age, wwt.WwtCredentials.from_secret)
            return WwtService(
                secrets,
                lambda creds: wwt.WwtClient(http, config.base_url, creds, config.wwt_auth_header),
                config.fan_out,
                config.batch_deadline,
            )
    raise ValueError(f"unknown provider {config.provider!r}")


def provider_service(provider: Provider, env: Mapping[str, str]) -> StatusService:
    """The service a function of `provider` uses while its container is warm (functions/*/app.py keep it). Its
    secret is read by the first lookup: the secrets extension answers only once the function is invoked."""
    return build_service(ProviderConfig.from_env(provider, env))


def measured_lookup(
    service: StatusService, keys: Sequence[str], kind: Kind = "id", via: str = "api", seconds: float | None = None
) -> list[Report]:
    """The one way every path (API, bulk, queue) looks ids up: the reports, the lookup metrics, one log line.

    An id whose lookup failed is an error report (`lookup.error_report`); a lookup that failed as a whole raises,
    and all its ids count as errors. Bad input (InvalidRequest) is the caller's, not the provider's: no metric.
    """
    provider = str(service.provider)
    started = time.monotonic()
    try:
        reports = service.lookup(keys, kind, seconds)
    except InvalidRequest:
        raise
    except ServiceError:
        asked = len(distinct(keys))
        count_lookups(provider, (), asked=asked, errors=asked, latency_ms=(time.monotonic() - started) * 1000)
        raise
    answered = [str(report.status) for report in reports if failed_lookup(report) is None]
    errors = len(reports) - len(answered)
    count_lookups(provider, answered, asked=len(reports), errors=errors, latency_ms=(time.monotonic() - started) * 1000)
    logger.info("lookup answered", extra={"provider": provider, "kind": kind, "count": len(reports), "errors": errors, "via": via})
    return reports
