import threading

import pytest

from sms_status.config import ConfigError, Configured, ProviderConfig, TrackedConfig, validate_base_url
from sms_status.errors import ServiceError
from sms_status.model import Provider


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://smsc.openmarket.com", "https://smsc.openmarket.com"),
        ("https://smsc.openmarket.com/", "https://smsc.openmarket.com"),
        ("https://api.wooxy.com:8443", "https://api.wooxy.com:8443"),
        ("http://127.0.0.1:8081", "http://127.0.0.1:8081"),
        ("http://127.5.0.1:8081", "http://127.5.0.1:8081"),
        ("http://localhost:9000", "http://localhost:9000"),
        ("http://[::1]:9000", "http://[::1]:9000"),
    ],
)
def test_accepted_base_urls(url, expected):
    assert validate_base_url(url, "X_BASE_URL") == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://api.wooxy.com",  # plain http off loopback
        "http://10.0.0.1:80",
        "ftp://127.0.0.1",
        "https://api.wooxy.com/v3",  # a path: the documented paths are appended by the client
        "https://user:pw@api.wooxy.com",
        "https://api.wooxy.com?x=1",
        "https://",
        "https://api.wooxy.com:99999",
        "api.wooxy.com",
    ],
)
def test_rejected_base_urls_name_the_variable(url):
    with pytest.raises(ConfigError, match="WOOXY_BASE_URL"):
        validate_base_url(url, "WOOXY_BASE_URL")


def test_from_env_defaults_to_the_real_provider():
    config = ProviderConfig.from_env(Provider.WWT, {"WWT_SECRET_NAME": "sms-status/wwt"})
    assert config.base_url == "https://api.wwt.world"
    assert config.wwt_auth_header == "X-API-KEY"


def test_from_env_reads_overrides():
    env = {
        "OPENMARKET_SECRET_NAME": "s",
        "OPENMARKET_BASE_URL": "http://127.0.0.1:8081",
        "PROVIDER_READ_TIMEOUT": "2.5",
        "PROVIDER_RETRIES": "0",
        "OPENMARKET_USER_AGENT": "Test/SMS/2.0.0",
    }
    config = ProviderConfig.from_env(Provider.OPENMARKET, env)
    assert (config.base_url, config.http.read_timeout, config.http.retries) == ("http://127.0.0.1:8081", 2.5, 0)
    assert config.openmarket_user_agent == "Test/SMS/2.0.0"


@pytest.mark.parametrize(
    ("provider", "env", "message"),
    [
        (Provider.WOOXY, {}, "WOOXY_SECRET_NAME is not set"),
        (Provider.WOOXY, {"WOOXY_SECRET_NAME": "s", "PROVIDER_READ_TIMEOUT": "soon"}, "PROVIDER_READ_TIMEOUT must be a number"),
        (Provider.WOOXY, {"WOOXY_SECRET_NAME": "s", "PROVIDER_READ_TIMEOUT": "-1"}, "PROVIDER_READ_TIMEOUT must be positive"),
        (Provider.WOOXY, {"WOOXY_SECRET_NAME": "s", "PROVIDER_RETRIES": "-1"}, "PROVIDER_RETRIES must be at least 0"),
        (Provider.OPENMARKET, {"OPENMARKET_SECRET_NAME": "s", "OPENMARKET_USER_AGENT": "x" * 61}, "OPENMARKET_USER_AGENT: .* 60 printable"),
        (Provider.OPENMARKET, {"OPENMARKET_SECRET_NAME": "s", "OPENMARKET_USER_AGENT": "Test/SMS/1.0\r\nX: y"}, "OPENMARKET_USER_AGENT"),
        (Provider.WWT, {"WWT_SECRET_NAME": "s", "WWT_AUTH_HEADER": "X-API-KEY\r\nX-Evil"}, "WWT_AUTH_HEADER"),
        (Provider.WWT, {"WWT_SECRET_NAME": "s", "WWT_AUTH_HEADER": "X API KEY"}, "WWT_AUTH_HEADER"),
    ],
)
def test_bad_settings_name_the_variable(provider, env, message):
    with pytest.raises(ConfigError, match=message):
        ProviderConfig.from_env(provider, env)


def test_a_provider_reads_no_other_providers_settings():
    # A Wooxy function is not broken by an OpenMarket or WWT setting it never uses.
    env = {"WOOXY_SECRET_NAME": "s", "OPENMARKET_USER_AGENT": "x" * 61, "WWT_AUTH_HEADER": "X API KEY"}
    assert ProviderConfig.from_env(Provider.WOOXY, env).secret_name == "s"


def test_the_tracked_route_reads_its_status_table():
    assert TrackedConfig.from_env({"STATUS_TABLE_NAME": " status "}).status_table == "status"
    with pytest.raises(ConfigError, match="STATUS_TABLE_NAME is not set"):
        TrackedConfig.from_env({"STATUS_TABLE_NAME": "  "})


def test_configured_builds_once_and_a_bad_setting_is_a_service_error_naming_it(monkeypatch):
    built = []
    monkeypatch.setenv("STATUS_TABLE_NAME", "status")
    table = Configured(lambda env: built.append(TrackedConfig.from_env(env)) or built[-1])
    threads = [threading.Thread(target=table) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(built), table().status_table) == (1, "status")
    monkeypatch.delenv("STATUS_TABLE_NAME")
    broken = Configured(TrackedConfig.from_env)
    for _ in range(2):  # every use, not only the first
        with pytest.raises(ServiceError, match="configuration error: STATUS_TABLE_NAME is not set"):
            broken()
