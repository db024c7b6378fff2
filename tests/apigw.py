"""Real-shaped API Gateway REST proxy events, and loading the real handlers the way Lambda does."""

from __future__ import annotations

import importlib.util
import json
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def load_handler(name: str, root: Path = ROOT / "functions") -> ModuleType:
    """functions/<name>/app.py as a module of its own (each function has an `app.py`)."""
    module_name = f"{name}_function_app"
    spec = importlib.util.spec_from_file_location(module_name, root / name / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def rest_event(method: str, resource: str, path_params: dict[str, str] | None = None, body: Any = None) -> dict[str, Any]:
    path = resource
    for name, value in (path_params or {}).items():
        path = path.replace("{" + name + "}", value)
    raw_body = body if isinstance(body, str) or body is None else json.dumps(body)
    request_id = str(uuid.uuid4())
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json", "Host": "abc123.execute-api.us-east-1.amazonaws.com"},
        "multiValueHeaders": {"Content-Type": ["application/json"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": path_params or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/v1{path}",
            "stage": "v1",
            "requestId": request_id,
            "accountId": "123456789012",
            "apiId": "abc123",
            "identity": {"caller": "AIDATEST", "userArn": "arn:aws:iam::123456789012:user/tester", "sourceIp": "127.0.0.1"},
        },
        "body": raw_body,
        "isBase64Encoded": False,
    }


class LambdaContext:
    function_name = "test-function"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 25_000


def call(handler: ModuleType, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = handler.lambda_handler(event, LambdaContext())
    return response["statusCode"], json.loads(response["body"])
