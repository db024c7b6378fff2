"""The REST proxy router (sms_status.rest): matching, answers and error handling, on plain proxy events."""

from __future__ import annotations

import json

import pytest

from sms_status.rest import Response, RestApp


class Refused(ValueError):
    pass


def event(method: str, path: str) -> dict:
    return {"httpMethod": method, "path": path, "body": None, "isBase64Encoded": False}


@pytest.fixture
def app() -> RestApp:
    app = RestApp()

    @app.get("/things/<thing_id>")
    def one(thing_id: str) -> Response:
        if thing_id == "refused":
            raise Refused("no")
        if thing_id == "broken":
            raise KeyError("x")
        return Response(200, json.dumps({"id": thing_id}), {"Location": "/x"})

    @app.post("/things")
    def many() -> dict:
        return {"asked": app.event["body"], "context": app.lambda_context}

    @app.exception_handler(ValueError)
    def value_error(error: ValueError) -> Response:
        return Response(400, json.dumps({"error": type(error).__name__}))

    @app.not_found
    def no_route() -> Response:
        return Response(404, json.dumps({"no route": f"{app.event['httpMethod']} {app.event['path']}"}))

    return app


def test_a_path_parameter_is_one_segment_as_sent_and_trailing_slashes_are_ignored(app: RestApp):
    for path, thing in (("/things/a%20b", "a%20b"), ("/things/x:y@z/", "x:y@z"), ("/things/q//", "q")):
        answer = app.resolve(event("GET", path), None)
        assert (answer["statusCode"], json.loads(answer["body"])) == (200, {"id": thing})
    assert app.resolve(event("GET", "/things/a/b"), None)["statusCode"] == 404
    assert app.resolve(event("GET", "/things/"), None)["statusCode"] == 404


def test_the_answer_is_a_rest_proxy_response_with_multi_value_headers(app: RestApp):
    answer = app.resolve(event("GET", "/things/t1"), None)
    assert answer == {
        "statusCode": 200,
        "body": '{"id": "t1"}',
        "isBase64Encoded": False,
        "multiValueHeaders": {"Content-Type": ["application/json"], "Location": ["/x"]},
    }


def test_a_dict_answers_200_as_compact_json_and_the_route_sees_the_event_and_context(app: RestApp):
    request = {**event("POST", "/things"), "body": "payload"}
    answer = app.resolve(request, "the-context")
    assert answer["statusCode"] == 200
    assert answer["body"] == '{"asked":"payload","context":"the-context"}'


def test_an_unknown_method_or_path_is_the_not_found_handlers(app: RestApp):
    for method, path in (("DELETE", "/things/t1"), ("get", "/nothing"), ("POST", "/things/t1")):
        answer = app.resolve(event(method, path), None)
        assert answer["statusCode"] == 404
        assert json.loads(answer["body"]) == {"no route": f"{method} {path}"}
    assert app.resolve(event("get", "/things/t1"), None)["statusCode"] == 200  # methods compare upper-cased


def test_an_error_goes_to_the_handler_of_its_nearest_class_and_an_unhandled_one_propagates(app: RestApp):
    answer = app.resolve(event("GET", "/things/refused"), None)
    assert (answer["statusCode"], json.loads(answer["body"])) == (400, {"error": "Refused"})
    with pytest.raises(KeyError):
        app.resolve(event("GET", "/things/broken"), None)

    @app.exception_handler(Refused)
    def refused(error: Refused) -> Response:
        return Response(403, "{}")

    assert app.resolve(event("GET", "/things/refused"), None)["statusCode"] == 403


def test_without_a_not_found_handler_an_unknown_route_is_a_plain_404():
    answer = RestApp().resolve({"httpMethod": "GET"}, None)
    assert (answer["statusCode"], json.loads(answer["body"])) == (404, {"message": "Not found"})
