"""OpenMarket v3 sandbox: `POST /wmp` "Query Message Status", as the seed document describes it.

- Only `POST /wmp` exists (other paths 404, other methods 405, each with a wmp error document).
- `Content-Type: text/xml` is required; anything else (typically url-encoded) is HTTP 400 + error 307,
  which is what OpenMarket's support pages say a wrong content type earns.
- The body is parsed safely; ill-formed XML (or a DTD) is HTTP 400 + error 307, an empty body 400 + 306.
- `request@version/protocol/type` are checked (303/304 missing, 321/322/323 wrong), `user@agent` is
  recorded, `account@id/password` are checked against `credentials` (wrong: error 420).
- Seeded tickets move through status codes over time: `add_message(ticket, steps=[(0, 2), (5, 3), (10, 4)])`.
  An unknown ticket, or one queried more than 5 days after it was created, is error 711 (v4's code).

HTTP statuses the seed does not pin (it only says "400-499 for rejected requests"), chosen here:
420 -> 403 (refused credentials; 401 would need a WWW-Authenticate challenge OpenMarket does not use),
711 -> 404, format errors -> 400.
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET  # building replies only: requests are parsed with defusedxml
from dataclasses import dataclass
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from .base import NESTING_DEPTH, Reply, Request, Sandbox

QUERY_WINDOW_SECONDS = 5 * 24 * 3600
XML_DECLARATION = b'<?xml version="1.0" ?>\n'

DEFAULT_CREDENTIALS = {"account_id": "000-111-222-33333", "password": "p&ss<w>rd\"'"}

# Status descriptions as the seed document and the observed live answers word them (OpenMarket's v3 code pages).
STATUS_DESCRIPTIONS: dict[int, str] = {
    0: "Message successfully sent to carrier.",
    1: "Processing request",
    2: "Message accepted",
    3: "Message buffered with carrier and waiting for delivery response.",
    4: "Message successfully delivered.",
    5: "Message transferred to carrier and waiting for buffered response.",
    351: "Invalid destination address value",
    410: "Recipient not found on carrier",
    507: "Carrier facility not supported",
    508: "Carrier absent subscriber",
    509: "Carrier delivery failed",
    510: "Carrier protocol error",
    511: "MS not equipped",
    513: "Illegal MS",
    514: "MS not a subscriber",
    561: "Content blocked by carrier",
    566: "Destination blocked by carrier",
    810: "Failed message delivery",
    811: "Message expired by carrier",
    815: "Submitted to but not acknowledged by carrier",
    1010: "Temporary system error",
    1020: "Temporary external system error",
    3041: "Message blocked by the deactivated numbers firewall",
}

ERROR_DESCRIPTIONS: dict[int, str] = {
    0: "No Error",
    301: "Only one top level request element is permitted",
    303: "The required version attribute of the request element was not found in the request",
    304: "The required protocol attribute of the request element was not found in the request",
    306: "The XML POST parameter cannot be empty",
    307: "The request was an ill-formed XML document",
    321: "Invalid request version",
    322: "Invalid request protocol",
    323: "Invalid request type",
    420: "Invalid subscriber ID or password",
    711: "The ticket was not found or is more than 5 days old",
    1000: "General system error",
}


@dataclass(frozen=True, slots=True)
class Query:
    """What one accepted query asked for (never the password, even here)."""

    account_id: str
    user_agent: str | None
    ticket_id: str


class _Rejected(Exception):
    def __init__(self, http_status: int, code: int) -> None:
        super().__init__(code)
        self.http_status = http_status
        self.code = code


class OpenMarketSandbox(Sandbox):
    name = "openmarket"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.credentials: dict[str, str] = dict(DEFAULT_CREDENTIALS)  # tests rotate it
        self.queries: list[Query] = []
        self._queries_lock = threading.Lock()

    @property
    def user_agents(self) -> list[str | None]:
        return [query.user_agent for query in self.queries]

    # ---- provider behaviour ----------------------------------------------------------------------
    def handle(self, request: Request) -> Reply:
        if request.path != "/wmp":
            return error_reply(404, 1000, "Not found: only POST /wmp is served")
        if request.method != "POST":
            return error_reply(405, 1000, "Method not allowed: only POST /wmp is served")
        try:
            query = self._read_query(request)
        except _Rejected as rejected:
            return error_reply(rejected.http_status, rejected.code)
        with self._queries_lock:
            self.queries.append(query)

        message = self.messages.get(query.ticket_id)
        now = self.clock.now()
        if message is None or now - message.created_at > QUERY_WINDOW_SECONDS:
            return error_reply(404, 711)
        code = int(message.state(now))
        return status_reply(code, STATUS_DESCRIPTIONS.get(code, ""))

    def _read_query(self, request: Request) -> Query:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "text/xml":
            raise _Rejected(400, 307)
        if not request.body.strip():
            raise _Rejected(400, 306)
        try:
            root = fromstring(request.body, forbid_dtd=True)
        except (ParseError, DefusedXmlException) as exc:
            raise _Rejected(400, 307) from exc
        if root.tag != "request":
            raise _Rejected(400, 301)
        for attribute, missing, wrong, expected in (
            ("version", 303, 321, "3.0"),
            ("protocol", 304, 322, "wmp"),
            ("type", 323, 323, "query"),
        ):
            value = root.get(attribute)
            if value is None:
                raise _Rejected(400, missing)
            if value != expected:
                raise _Rejected(400, wrong)

        account = root.find("account")
        account_id = account.get("id") if account is not None else None
        password = account.get("password") if account is not None else None
        # Compared after XML parsing: a password with & < > " ' matches only if the client escaped it.
        if account_id != self.credentials.get("account_id") or password != self.credentials.get("password"):
            raise _Rejected(403, 420)

        user = root.find("user")
        ticket = root.find("ticket")
        ticket_id = ticket.get("id") if ticket is not None else None
        if not ticket_id:
            raise _Rejected(404, 711)  # v3 documents no "ticket missing" code; answer as for an unknown ticket
        return Query(account_id=account_id, user_agent=user.get("agent") if user is not None else None, ticket_id=ticket_id)

    def content_type(self) -> str:
        return "text/xml"

    def deeply_nested_body(self) -> Reply:
        depth = NESTING_DEPTH
        return Reply(200, XML_DECLARATION + b"<response>" + b"<a>" * depth + b"</a>" * depth + b"</response>", "text/xml")

    def malformed_body(self) -> Reply:
        return Reply(200, XML_DECLARATION + b'<response version="3.0" protocol="wmp" type="query">\n<error code="0" descr', "text/xml")

    def seed_from_json(self, payload: dict[str, Any]) -> None:
        """`{"id": ticket, "steps": [[seconds, status_code], ...]}`."""
        steps = [(float(offset), int(code)) for offset, code in payload["steps"]]
        if not steps:
            raise ValueError("steps must not be empty")
        self.add_message(str(payload["id"]), steps)

    def seed_demo(self) -> list[str]:
        """A few tickets for `make run`: one delivering, one failing with 509, one staying at 0."""
        demo = {
            "12004-0328K-1232U-18C21": [(0, 2), (5, 3), (15, 4)],  # the seed document's example ticket
            "0112C-0402H-14019-14Y7K": [(0, 2), (5, 3), (15, 509)],
            "1A2B3-0402H-14019-00000": [(0, 0)],  # "sent", no further receipt (e.g. a US landline)
        }
        for ticket, steps in demo.items():
            self.add_message(ticket, steps)
        return list(demo)


def _document(*children: tuple[str, dict[str, str]]) -> bytes:
    response = ET.Element("response", {"version": "3.0", "protocol": "wmp", "type": "query"})
    for tag, attributes in children:
        ET.SubElement(response, tag, attributes)
    ET.indent(response, space="")  # one element per line, like the seed examples
    return XML_DECLARATION + ET.tostring(response, encoding="utf-8", xml_declaration=False) + b"\n"


def error_reply(http_status: int, code: int, description: str | None = None) -> Reply:
    attributes = {"code": str(code), "description": description or ERROR_DESCRIPTIONS.get(code, ""), "resolution": ""}
    return Reply(http_status, _document(("error", attributes)), "text/xml")


def status_reply(code: int, description: str) -> Reply:
    return Reply(
        200,
        _document(
            ("error", {"code": "0", "description": ERROR_DESCRIPTIONS[0], "resolution": ""}),
            ("status", {"code": str(code), "description": description, "resolution": ""}),
        ),
        "text/xml",
    )
