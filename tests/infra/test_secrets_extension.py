"""The Parameters and Secrets extension in the template: on exactly the functions that read a secret, configured
so that credentials.py's cache and timeouts hold (its own cache off, its Secrets Manager call shorter than ours)."""

from __future__ import annotations

import re

from sms_status import credentials
from tests.infra.test_template import resources, template

EXTENSION_LAYER = {
    "Fn::If": [
        "HasSecretsExtensionLayerArn",
        {"Ref": "SecretsExtensionLayerArn"},
        {"Fn::FindInMap": ["SecretsExtensionLayers", {"Ref": "AWS::Region"}, "Arm64"]},
    ]
}


def reads_a_secret(function: dict) -> bool:
    variables = function["Properties"].get("Environment", {}).get("Variables", {})
    return any(name.endswith("_SECRET_NAME") for name in variables)


def test_exactly_the_functions_that_read_a_secret_have_the_extension() -> None:
    functions = resources("AWS::Serverless::Function")
    with_extension = {name for name, body in functions.items() if EXTENSION_LAYER in body["Properties"].get("Layers", [])}
    readers = {name for name, body in functions.items() if reads_a_secret(body)}
    assert with_extension == readers
    assert len(readers) == 7  # three API functions, three tracking functions, the Wooxy chunk function
    assert all(layer == EXTENSION_LAYER for name in readers for layer in functions[name]["Properties"]["Layers"])


def test_the_extension_is_the_arm64_layer_the_functions_run_on() -> None:
    assert template()["Globals"]["Function"]["Architectures"] == ["arm64"]
    pattern = re.compile(template()["Parameters"]["SecretsExtensionLayerArn"]["AllowedPattern"])
    for region, entry in template()["Mappings"]["SecretsExtensionLayers"].items():
        arn = entry["Arm64"]
        assert pattern.fullmatch(arn), arn
        assert arn.split(":")[3] == region
        assert ":layer:AWS-Parameters-and-Secrets-Lambda-Extension-Arm64:" in arn
    assert pattern.fullmatch("")  # empty: the mapping's version for the region
    assert not pattern.fullmatch("arn:aws:lambda:us-east-1:177933569100:layer:AWS-Parameters-and-Secrets-Lambda-Extension:17")


def test_the_extension_keeps_no_cache_and_gives_up_before_we_do() -> None:
    variables = template()["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED"] == "false"  # SECRET_MAX_AGE is the one cache
    assert 0 < int(variables["SECRETS_MANAGER_TIMEOUT_MILLIS"]) < credentials.SECRETS_READ_TIMEOUT * 1000
    # The port is the extension's default, which credentials.py asks when nothing says otherwise.
    assert "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT" not in variables
    assert credentials.DEFAULT_EXTENSION_PORT == 2773
