"""Real-shaped API Gateway REST proxy events, and loading the real handlers the way Lambda does."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

from local.lambda_runtime import LambdaContext, load_module

ROOT = Path(__file__).resolve().parent.parent


def load_handler(name: str) -> ModuleType:
    """functions/<name>/app.py as a module of its own (each function has an `app.py`)."""
    return load_module(ROOT / "functions" / name / "app.py", f"{name}_function_app")


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


def call(handler: ModuleType, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = handler.lambda_handler(event, LambdaContext())
    return response["statusCode"], json.loads(response["body"])
