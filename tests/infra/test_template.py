"""Static checks of template.yaml, api/openapi.yaml and events/: fast, no AWS, no network.

What they guard: nothing is public (AWS_IAM on every operation), every integration reaches a function that
exists and may invoke it, every pinned route is served and has a realistic event, the timeout budget holds,
and cfn-lint is clean. What the roles may do is test_least_privilege.py.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.api import ManualArgs, lint_file
from cfnlint.decode import cfn_yaml

from sms_status.config import ProviderConfig, TrackingConfig
from sms_status.http import HttpSettings
from sms_status.model import Provider, ProviderStatus, Report, Status

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
OPENAPI_PATH = ROOT / "api" / "openapi.yaml"
EVENTS_DIR = ROOT / "events"

# The pinned routes (README "HTTP API").
PINNED_ROUTES = {
    ("POST", "/wooxy/status/bulk"),
    ("POST", "/wooxy/bulk-jobs"),
    ("GET", "/wooxy/bulk-jobs/{job_id}"),
    ("GET", "/tracked/{provider}/{id}"),
    ("GET", "/openmarket/messages/{ticketId}"),
    ("GET", "/wooxy/messages/{id}"),
    ("GET", "/wwt/messages/{id}"),
    ("GET", "/wwt/references/{reference}"),
    ("POST", "/openmarket/status"),
    ("POST", "/wooxy/status"),
    ("POST", "/wwt/status"),
}
# The bulk routes: a function of their own that never calls Wooxy, so it can wait for a job (docs/bulk.md).
BULK_ROUTES = {("POST", "/wooxy/status/bulk"), ("POST", "/wooxy/bulk-jobs"), ("GET", "/wooxy/bulk-jobs/{job_id}")}
# Every route is a Lambda proxy; the function behind each: the provider's own, the bulk one, the table reader.
PROXY_ROUTES = {
    route: "TrackedFunction"
    if route[1].startswith("/tracked/")
    else "WooxyBulkFunction"
    if route in BULK_ROUTES
    else f"{Provider(route[1].split('/')[1]).name.title().replace('Openmarket', 'OpenMarket')}Function"
    for route in PINNED_ROUTES
}
# The event files asked for, and the route each one exercises.
EVENT_FILES = {
    "tracked/get_message.json": ("GET", "/tracked/{provider}/{id}"),
    "tracked/get_reference.json": ("GET", "/tracked/{provider}/{id}"),
    "openmarket/get_message.json": ("GET", "/openmarket/messages/{ticketId}"),
    "openmarket/post_status.json": ("POST", "/openmarket/status"),
    "wooxy/get_message.json": ("GET", "/wooxy/messages/{id}"),
    "wooxy/post_status.json": ("POST", "/wooxy/status"),
    "wooxy/post_status_bulk.json": ("POST", "/wooxy/status/bulk"),
    "wooxy/post_bulk_job.json": ("POST", "/wooxy/bulk-jobs"),
    "wooxy/get_bulk_job.json": ("GET", "/wooxy/bulk-jobs/{job_id}"),
    "wwt/get_message.json": ("GET", "/wwt/messages/{id}"),
    "wwt/get_reference.json": ("GET", "/wwt/references/{reference}"),
    "wwt/post_status.json": ("POST", "/wwt/status"),
    "wwt/post_status_references.json": ("POST", "/wwt/status"),
}
FUNCTIONS = {Provider.OPENMARKET: "OpenMarketFunction", Provider.WOOXY: "WooxyFunction", Provider.WWT: "WwtFunction"}
# The queue path of each provider runs in a function of its own (functions/<provider>_tracking/).
TRACKING = {Provider.OPENMARKET: "OpenMarketTrackingFunction", Provider.WOOXY: "WooxyTrackingFunction", Provider.WWT: "WwtTrackingFunction"}
SECRETS = {Provider.OPENMARKET: "OpenMarketSecret", Provider.WOOXY: "WooxySecret", Provider.WWT: "WwtSecret"}
# Pinned secret JSON keys (docs/local.md, docs/deploy.md).
SECRET_KEYS = {Provider.OPENMARKET: {"account_id", "password"}, Provider.WOOXY: {"access_token"}, Provider.WWT: {"api_key"}}
ERROR_CODES = {"invalid_request", "provider_error", "provider_timeout", "provider_unavailable", "credentials_error", "internal_error"}
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace", "x-amazon-apigateway-any-method")
API_GATEWAY_LIMIT_SECONDS = 29


# --------------------------------------------------------------------------- loading


@cache
def template() -> dict[str, Any]:
    # cfn-lint's decoder understands the short-form tags (!Ref, !Sub, !GetAtt) and returns plain long form.
    return cfn_yaml.load(str(TEMPLATE_PATH))


@cache
def openapi() -> dict[str, Any]:
    # Plain YAML on purpose: AWS::Include does not accept short-form tags, and the local run reads it too.
    return yaml.safe_load(OPENAPI_PATH.read_text())


def resources(of_type: str | None = None) -> dict[str, dict[str, Any]]:
    items = template()["Resources"].items()
    return {name: body for name, body in items if of_type is None or body["Type"] == of_type}


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in openapi()["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def refs(node: Any) -> set[str]:
    """Logical ids a CloudFormation value points at (Ref, GetAtt, ${Name} or ${Name.Attr} in Sub)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text, variables = (value[0], value[1]) if isinstance(value, list) else (value, {})
                # Names in the variable map are local to this Sub; their values may point at resources.
                found |= {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text)} - set(variables)
                found |= refs(variables)
            else:
                found |= refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= refs(value)
    return {name for name in found if not name.startswith("AWS::")}


def request_schemas(operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Field name -> array schema, for the body a POST operation accepts."""
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return openapi()["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]


def parameter_default(name: str) -> str:
    return str(template()["Parameters"][name]["Default"])


def resolve(value: Any) -> str:
    """A template value with parameter defaults filled in (Ref to a parameter, or a literal)."""
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in template()["Parameters"]:
        return parameter_default(value["Ref"])
    return str(value)


# --------------------------------------------------------------------------- authorization


def test_sigv4_scheme_is_aws_iam() -> None:
    scheme = openapi()["components"]["securitySchemes"]["sigv4"]
    assert scheme == {"type": "apiKey", "name": "Authorization", "in": "header", "x-amazon-apigateway-authtype": "awsSigv4"}
    assert openapi()["components"]["securitySchemes"].keys() == {"sigv4"}


@pytest.mark.parametrize(("method", "path"), sorted(PINNED_ROUTES))
def test_every_operation_requires_sigv4(method: str, path: str) -> None:
    operation = openapi()["paths"][path][method.lower()]
    # Exactly sigv4: an extra `{}` entry would make authorization optional.
    assert operation.get("security") == [{"sigv4": []}]


def test_no_operation_is_public() -> None:
    found = list(operations())
    assert len(found) >= len(PINNED_ROUTES)
    public = [(method, path) for method, path, operation in found if operation.get("security") != [{"sigv4": []}]]
    assert public == []
    assert openapi()["security"] == [{"sigv4": []}]


# --------------------------------------------------------------------------- routes and integrations


def test_pinned_routes_are_exactly_served() -> None:
    assert {(method, path) for method, path, _ in operations()} == PINNED_ROUTES


def test_handlers_serve_the_same_routes() -> None:
    from sms_status.api import BULK_ROUTES as HANDLED_BULK_ROUTES  # the handlers' own route tables (they pull in Powertools)
    from sms_status.api import ROUTES

    tables = {**{FUNCTIONS[provider]: set(routes) for provider, routes in ROUTES.items()}, "WooxyBulkFunction": set(HANDLED_BULK_ROUTES)}
    for function, routes in tables.items():
        served = {(method, path) for method, path, operation in operations() if integration_function(operation) == function}
        assert served == routes, function


def test_every_route_is_a_lambda_proxy() -> None:
    kinds = {(method, path): operation["x-amazon-apigateway-integration"]["type"] for method, path, operation in operations()}
    assert set(kinds.values()) == {"aws_proxy"}


def integration_function(operation: dict[str, Any]) -> str:
    integration = operation["x-amazon-apigateway-integration"]
    assert integration["type"] == "aws_proxy"
    assert integration["httpMethod"] == "POST"  # Lambda is always invoked with POST, whatever the route's method
    uri = integration["uri"]["Fn::Sub"]
    match = re.fullmatch(
        r"arn:\$\{AWS::Partition\}:apigateway:\$\{AWS::Region\}:lambda:path/2015-03-31/functions/\$\{(\w+)\.Arn\}/invocations", uri
    )
    assert match, uri
    return match.group(1)


@pytest.mark.parametrize(("method", "path"), sorted(PROXY_ROUTES))
def test_integration_points_at_the_routes_function(method: str, path: str) -> None:
    function = integration_function(openapi()["paths"][path][method.lower()])
    assert function in resources("AWS::Serverless::Function")
    assert function == PROXY_ROUTES[(method, path)]


@pytest.mark.parametrize("provider", list(Provider))
def test_api_gateway_may_invoke_each_function_on_its_own_routes_only(provider: Provider) -> None:
    function = FUNCTIONS[provider]
    permissions = [
        body["Properties"]
        for body in resources("AWS::Lambda::Permission").values()
        if refs(body["Properties"]["FunctionName"]) == {function}
    ]
    assert len(permissions) == 1
    permission = permissions[0]
    assert permission["Principal"] == "apigateway.amazonaws.com"
    assert permission["Action"] == "lambda:InvokeFunction"
    prefix = f"/{provider}/"
    assert permission["SourceArn"] == {
        "Fn::Sub": f"arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{SmsStatusApi}}/*/*{prefix}*"
    }
    # ...and that prefix covers every route the function serves.
    served = [path for _, path, operation in operations() if integration_function(operation) == function]
    assert served
    assert all(path.startswith(prefix) for path in served)


def test_api_gateway_may_invoke_the_bulk_function_on_the_bulk_routes_only() -> None:
    arns = sorted(
        body["Properties"]["SourceArn"]["Fn::Sub"].split("${SmsStatusApi}", 1)[1]
        for body in resources("AWS::Lambda::Permission").values()
        if refs(body["Properties"]["FunctionName"]) == {"WooxyBulkFunction"}
    )
    assert arns == ["/*/*/wooxy/bulk-jobs*", "/*/POST/wooxy/status/bulk"]


def test_api_definition_is_the_included_openapi_document() -> None:
    (api,) = resources("AWS::Serverless::Api").values()
    body = api["Properties"]["DefinitionBody"]
    assert body == {"Fn::Transform": {"Name": "AWS::Include", "Parameters": {"Location": "api/openapi.yaml"}}}
    assert (ROOT / body["Fn::Transform"]["Parameters"]["Location"]).is_file()
    assert api["Properties"]["TracingEnabled"] is True
    for setting in api["Properties"]["MethodSettings"]:
        assert setting["DataTraceEnabled"] is False  # never log request or response bodies


def test_no_short_form_tags_in_the_openapi_document() -> None:
    # AWS::Include rejects YAML short forms; safe_load would already have failed on them, so check the text too.
    assert not re.search(r"!(Ref|Sub|GetAtt|If|Join)\b", OPENAPI_PATH.read_text())


def test_no_request_validators_override_our_error_shape() -> None:
    # Our handlers validate and answer the pinned error JSON; API Gateway's validators answer {"message": ...}.
    assert "x-amazon-apigateway-request-validators" not in openapi()
    assert all("x-amazon-apigateway-request-validator" not in operation for _, _, operation in operations())


@pytest.mark.parametrize("response_type", ["DEFAULT_4XX", "DEFAULT_5XX"])
def test_gateway_responses_use_the_pinned_error_shape(response_type: str) -> None:
    template_text = openapi()["x-amazon-apigateway-gateway-responses"][response_type]["responseTemplates"]["application/json"]
    # As API Gateway renders it: messageString is already a quoted JSON string.
    rendered = template_text.replace("$context.error.messageString", json.dumps("Missing Authentication Token")).replace(
        "$context.error.responseType", "MISSING_AUTHENTICATION_TOKEN"
    )
    body = json.loads(rendered)
    assert body["error"]["code"] in ERROR_CODES
    assert body["error"]["message"] == "Missing Authentication Token"
    assert body["error"]["details"] == {"gateway_response": "MISSING_AUTHENTICATION_TOKEN"}


# --------------------------------------------------------------------------- schemas


def test_report_schema_matches_the_model() -> None:
    schema = openapi()["components"]["schemas"]["Report"]
    report = Report(provider=Provider.WOOXY, id="x", status=Status.SENT, final=False, provider_status=ProviderStatus("2"))
    assert set(schema["required"]) == set(report.to_dict())
    assert set(schema["properties"]) == set(report.to_dict()) | {"details"}
    assert set(openapi()["components"]["schemas"]["Status"]["enum"]) == {str(status) for status in Status}
    assert set(openapi()["components"]["schemas"]["Provider"]["enum"]) == {str(provider) for provider in Provider}


def test_error_schema_lists_the_pinned_codes() -> None:
    error = openapi()["components"]["schemas"]["Error"]["properties"]["error"]
    assert set(error["properties"]["code"]["enum"]) == ERROR_CODES
    assert set(error["required"]) == {"code", "message"}


@pytest.mark.parametrize(
    ("path", "fields"), [("/openmarket/status", {"ids"}), ("/wooxy/status", {"ids"}), ("/wwt/status", {"ids", "references"})]
)
def test_batch_requests_take_up_to_100_keys(path: str, fields: set[str]) -> None:
    schemas = request_schemas(openapi()["paths"][path]["post"])
    assert set(schemas) == fields
    assert all(schema["maxItems"] == 100 for schema in schemas.values())


def test_openapi_avoids_what_api_gateway_cannot_import() -> None:
    # API Gateway models are JSON Schema draft 4 without oneOf/anyOf/discriminator/additionalProperties, and
    # response $refs must be inline: keep the import free of warnings (and of silently dropped schema parts).
    # The one exception: request bodies say `additionalProperties: false` and (WWT ids) `anyOf`, because the
    # handlers refuse unknown fields and take integer WWT ids, and the document must say what they do. No
    # request validator uses the models, so API Gateway dropping those two keywords changes nothing.
    def keys(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                yield key
                yield from keys(value)
        elif isinstance(node, list):
            for value in node:
                yield from keys(value)

    request_bodies = {
        operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        for operations in openapi()["paths"].values()
        for operation in operations.values()
        if "requestBody" in operation
    }
    schemas = openapi()["components"]["schemas"]
    used = set(keys({**openapi(), "components": {name: schema for name, schema in schemas.items() if name not in request_bodies}}))
    assert not used & {"oneOf", "anyOf", "allOf", "not", "discriminator", "additionalProperties", "example", "examples", "readOnly"}
    in_requests = set(keys([schemas[name] for name in request_bodies]))
    assert not in_requests & {"oneOf", "allOf", "not", "discriminator", "example", "examples", "readOnly"}
    assert "responses" not in openapi().get("components", {})
    assert all(re.fullmatch(r"[A-Za-z0-9]+", name) for name in openapi()["components"]["schemas"])  # model names


# --------------------------------------------------------------------------- functions, layer, secrets


def test_globals_runtime_tracing_and_timeout_budget() -> None:
    globals_ = template()["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.13"
    assert globals_["Architectures"] == ["arm64"]
    assert globals_["Tracing"] == "Active"
    assert refs(globals_["Layers"]) == {"SharedLayer"}
    params = template()["Parameters"]
    timeout = params["FunctionTimeout"]
    assert globals_["Timeout"] == {"Ref": "FunctionTimeout"}
    assert int(timeout["MaxValue"]) < API_GATEWAY_LIMIT_SECONDS
    # Worst case of one provider call with the largest allowed timeouts stays under the smallest allowed function timeout.
    env = globals_["Environment"]["Variables"]
    retries = int(env["PROVIDER_RETRIES"])
    settings = HttpSettings()
    backoff = sum(min(settings.backoff_max, settings.backoff_factor * 2**attempt) for attempt in range(retries))
    connect = float(params[env["PROVIDER_CONNECT_TIMEOUT"]["Ref"]]["MaxValue"])
    read = float(params[env["PROVIDER_READ_TIMEOUT"]["Ref"]]["MaxValue"])
    assert (retries + 1) * (connect + read) + backoff < int(timeout["MinValue"])


def test_shared_layer_is_built_from_its_requirements() -> None:
    layer = resources()["SharedLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"] == {"BuildMethod": "python3.13", "BuildArchitecture": "arm64"}
    content = ROOT / layer["Properties"]["ContentUri"]
    assert (content / "requirements.txt").is_file()
    assert (content / "sms_status" / "__init__.py").is_file()


@pytest.mark.parametrize("provider", list(Provider))
def test_function_environment_is_what_the_config_reads(provider: Provider) -> None:
    function = resources()[FUNCTIONS[provider]]["Properties"]
    assert (ROOT / function["CodeUri"] / "app.py").is_file()
    assert function["Handler"] == "app.lambda_handler"
    variables = function["Environment"]["Variables"]
    prefix = provider.name
    assert variables["POWERTOOLS_SERVICE_NAME"] == str(provider)
    assert variables[f"{prefix}_SECRET_NAME"] == {"Ref": SECRETS[provider]}
    # The config accepts the deployed defaults (a secret's Ref is its ARN at deploy time).
    arn = f"arn:aws:secretsmanager:us-east-1:123456789012:secret:sms-status/{provider}-AbCdEf"
    env = {name: resolve(value) for name, value in (template()["Globals"]["Function"]["Environment"]["Variables"] | variables).items()}
    env[f"{prefix}_SECRET_NAME"] = arn
    config = ProviderConfig.from_env(provider, env)
    assert config.base_url == parameter_default(variables[f"{prefix}_BASE_URL"]["Ref"])
    assert config.http.read_timeout == float(parameter_default("ProviderReadTimeout"))


@pytest.mark.parametrize("provider", list(Provider))
def test_tracking_function_environment_is_what_the_config_reads(provider: Provider) -> None:
    function = resources()[TRACKING[provider]]["Properties"]
    assert function["CodeUri"] == f"functions/{provider}_tracking/"
    assert (ROOT / function["CodeUri"] / "app.py").is_file()
    assert function["Handler"] == "app.lambda_handler"
    variables = function["Environment"]["Variables"]
    assert variables["POWERTOOLS_SERVICE_NAME"] == f"{provider}-tracking"
    prefix = provider.name
    assert variables[f"{prefix}_SECRET_NAME"] == {"Ref": SECRETS[provider]}
    # Parameters take their defaults; a resource's Ref or GetAtt becomes a placeholder naming the variable.
    env = {}
    for name, value in (template()["Globals"]["Function"]["Environment"]["Variables"] | variables).items():
        is_parameter = not isinstance(value, dict) or value.get("Ref") in template()["Parameters"]
        env[name] = resolve(value) if is_parameter else f"x-{name}"
    config = ProviderConfig.from_env(provider, env)
    assert config.base_url == parameter_default(variables[f"{prefix}_BASE_URL"]["Ref"])
    assert config.batch_deadline == 30.0
    tracking = TrackingConfig.from_env(env)
    assert tracking.recheck_queue_arn == "x-RECHECK_QUEUE_ARN"
    assert variables["RECHECK_QUEUE_URL"] == {"Ref": f"{SECRETS[provider].removesuffix('Secret')}RecheckQueue"}
    assert tracking.query_window.total_seconds() == 3600 * int(parameter_default("QueryWindowHours"))


@pytest.mark.parametrize("provider", list(Provider))
def test_secrets_are_placeholders_with_the_pinned_keys(provider: Provider) -> None:
    secret = resources()[SECRETS[provider]]["Properties"]
    assert "SecretString" not in secret  # no credential in the template, ever
    generated = secret["GenerateSecretString"]
    keys = set(json.loads(generated["SecretStringTemplate"])) | {generated["GenerateStringKey"]}
    assert keys == SECRET_KEYS[provider]
    assert "after deploy" in secret["Description"]


def test_outputs_cover_the_api_functions_secrets_and_layer() -> None:
    outputs = template()["Outputs"]
    assert refs(outputs["ApiUrl"]["Value"]) == {"SmsStatusApi", "StageName"}
    referenced = set().union(*(refs(output["Value"]) for output in outputs.values()))
    functions = set(FUNCTIONS.values()) | set(TRACKING.values()) | {"WooxyChunkFunction"}
    assert functions | set(SECRETS.values()) | {"SharedLayer"} <= referenced


# --------------------------------------------------------------------------- events


@pytest.mark.parametrize("name", sorted(EVENT_FILES))
def test_event_is_a_rest_proxy_event_for_a_defined_route(name: str) -> None:
    event = json.loads((EVENTS_DIR / name).read_text())
    method, resource = EVENT_FILES[name]
    assert (event["httpMethod"], event["resource"]) == (method, resource)
    assert method.lower() in openapi()["paths"][event["resource"]]
    context = event["requestContext"]
    assert context["resourcePath"] == resource
    assert context["httpMethod"] == method
    assert context["identity"]["userArn"].startswith("arn:aws:sts::")  # an IAM caller: the API is AWS_IAM only
    assert context["path"] == f"/{context['stage']}{event['path']}"
    assert event["stageVariables"] is None
    assert event["isBase64Encoded"] is False
    assert {name.lower() for name in event["multiValueHeaders"]} == {name.lower() for name in event["headers"]}
    path = resource
    for param, value in (event["pathParameters"] or {}).items():
        path = path.replace("{" + param + "}", value)
    assert event["path"] == path
    if method == "POST":
        ((field, keys),) = json.loads(event["body"]).items()
        schema = request_schemas(openapi()["paths"][resource]["post"])[field]
        assert 1 <= len(keys) <= schema["maxItems"]
        assert all(isinstance(key, str) and re.fullmatch(schema["items"].get("pattern", ".+"), key) for key in keys)
    else:
        assert event["body"] is None


def test_every_route_has_an_event_and_every_event_is_listed() -> None:
    assert set(EVENT_FILES.values()) == set(PROXY_ROUTES)
    on_disk = {path.relative_to(EVENTS_DIR).as_posix() for path in EVENTS_DIR.rglob("*.json")}
    api_events = {name for name in on_disk if json.loads((EVENTS_DIR / name).read_text()).get("requestContext", {}).get("apiId")}
    assert api_events == set(EVENT_FILES)


# --------------------------------------------------------------------------- cfn-lint


def test_cfn_lint_is_clean() -> None:
    # Warnings too: `make lint` runs the same cfn-lint, which fails on them as well.
    matches = lint_file(TEMPLATE_PATH, config=ManualArgs(regions=["us-east-1"]))
    assert [f"{match.rule.id} {match.message} (line {match.linenumber})" for match in matches] == []


if __name__ == "__main__":  # pragma: no cover - convenience: python tests/infra/test_template.py
    sys.exit(pytest.main([__file__, "-q"]))


def test_every_alarm_notifies_the_alarm_topic_given_or_the_stacks_own() -> None:
    alarms = resources("AWS::CloudWatch::Alarm")
    assert alarms  # one per DLQ
    topic = {"Fn::If": ["CreatesAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [topic], name
