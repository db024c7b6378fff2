"""A stand-in for `sms_status.http.HttpClient` that answers one canned response and records every request
(method, url, headers, body): the provider client tests assert the request a client sends."""

from __future__ import annotations

from sms_status.http import HttpResponse


class RecordingHttp:
    def __init__(self, status: int, body: bytes) -> None:
        self.response = HttpResponse(status, {}, body)
        self.calls: list[tuple[str, str, dict[str, str] | None, bytes | None]] = []

    def send(self, method: str, url: str, *, headers: dict[str, str] | None = None, body: bytes | None = None, **_: object) -> HttpResponse:
        self.calls.append((method, url, headers, body))
        return self.response
