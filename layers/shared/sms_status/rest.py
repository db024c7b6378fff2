"""A small router for API Gateway REST proxy events: the few routes each function serves, and their errors.

Powertools' `APIGatewayRestResolver` did this before; importing its event handler package costs about a fifth of
a cold first answer (the package also loads every other resolver, asyncio with AppSync's), for features these
routes do not use (CORS, OpenAPI, middlewares, compression). What is kept of it: routes written `/a/<name>`, a
name matching one path segment of URI characters, trailing slashes ignored; an unknown path or method is the
not-found handler's; exception handlers chosen by the error's class, most specific first; a route that returns a
dict answers 200 with it as JSON; the answer carries `multiValueHeaders`, as REST proxy integrations expect.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# One path segment: unreserved and sub-delimiter characters, `%` escapes, and what API Gateway passes on as sent.
_SEGMENT = r"[-._~()'!*:@,;=+&$%<> \[\]{}|^\w]+"
JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Response:
    status_code: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON

    def to_proxy(self) -> dict[str, Any]:
        headers = {"Content-Type": self.content_type, **self.headers}
        return {
            "statusCode": self.status_code,
            "body": self.body,
            "isBase64Encoded": False,
            "multiValueHeaders": {name: [value] for name, value in headers.items()},
        }


@dataclass(frozen=True, slots=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    call: Callable[..., Response | dict[str, Any]]


class RestApp:
    def __init__(self) -> None:
        self._routes: list[_Route] = []
        self._error_handlers: dict[type[Exception], Callable[[Any], Response]] = {}
        self._not_found: Callable[[], Response] = lambda: Response(404, json.dumps({"message": "Not found"}))
        self.event: dict[str, Any] = {}  # the request being answered
        self.lambda_context: Any = None

    def route(self, rule: str, method: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        regex = re.sub(r"<(\w+)>", lambda name: f"(?P<{name[1]}>{_SEGMENT})", rule)
        pattern = re.compile(f"^{regex}/*$")

        def register(call: Callable[..., Any]) -> Callable[..., Any]:
            self._routes.append(_Route(method, pattern, call))  # upper case, as API Gateway sends it
            return call

        return register

    def get(self, rule: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self.route(rule, "GET")

    def post(self, rule: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self.route(rule, "POST")

    def exception_handler(self, error_type: type[Exception]) -> Callable[[Callable[[Any], Response]], Callable[[Any], Response]]:
        def register(handler: Callable[[Any], Response]) -> Callable[[Any], Response]:
            self._error_handlers[error_type] = handler
            return handler

        return register

    def not_found(self, handler: Callable[[], Response]) -> Callable[[], Response]:
        self._not_found = handler
        return handler

    def resolve(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.event, self.lambda_context = event, context
        try:
            answer = self._dispatch(str(event.get("httpMethod") or "").upper(), str(event.get("path") or "/"))
            response = answer if isinstance(answer, Response) else Response(200, json.dumps(answer, separators=(",", ":")))
        except Exception as error:
            handler = next((self._error_handlers[kind] for kind in type(error).__mro__ if kind in self._error_handlers), None)
            if handler is None:
                raise
            response = handler(error)
        return response.to_proxy()

    def _dispatch(self, method: str, path: str) -> Response | dict[str, Any]:
        for route in self._routes:
            if route.method == method and (match := route.pattern.match(path)):
                return route.call(**match.groupdict())
        return self._not_found()
