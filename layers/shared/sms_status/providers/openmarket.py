"""OpenMarket v3 "Query Message Status": `POST /wmp` with an XML body, XML answer (seed document).

- The request is built with ElementTree, never by string formatting: passwords and ticket ids may hold
  & < > " ' and must reach OpenMarket intact.
- The answer is parsed with defusedxml (no DTDs, no entity expansion, no external entities) and read by
  numeric codes only: `error@code` (the request) first, then `status@code` (the message).
- What each code means lives in `sms_status.mapping.openmarket`; this module only applies it.
- Nothing here logs: the request body carries the account password.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # building XML only: every parse goes through defusedxml
from dataclasses import dataclass, field
from datetime import datetime

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from ..credentials import secret_fields
from ..errors import InvalidRequest, ProviderAuthError, ProviderError, ProviderUnavailable
from ..http import HttpClient
from ..mapping.openmarket import (
    AUTH_ERROR_CODES,
    NO_ERROR,
    NOT_FOUND_ERROR_CODES,
    TEMPORARY_ERROR_CODES,
    classify,
)
from ..model import UNKNOWN_OUTCOME, Provider, ProviderStatus, Report, not_found, utcnow

PROVIDER = Provider.OPENMARKET
WMP_PATH = "/wmp"
CONTENT_TYPE = "text/xml"  # required by OpenMarket; a url-encoded content type earns error 307
USER_AGENT_MAX_LENGTH = 60  # documented limit of `user@agent`
TICKET_ID_MAX_LENGTH = 64  # real tickets are ~23 characters; anything much longer is not a ticket
XML_DECLARATION = b'<?xml version="1.0"?>\n'

# Characters XML 1.0 cannot carry at all (even escaped). ElementTree would write them raw and produce a
# document OpenMarket rejects, so they are refused before anything is sent.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_DIGITS = re.compile("[0-9]+")  # int() alone would also take "1_0", " 4 " or non-ASCII digits


@dataclass(frozen=True, slots=True)
class OpenMarketCredentials:
    account_id: str
    password: str = field(repr=False)

    @classmethod
    def from_secret(cls, value: object, secret_name: str) -> OpenMarketCredentials:
        """`{"account_id": "...", "password": "..."}`; both go into the query XML, so no characters XML cannot carry."""
        account_id, password = secret_fields(value, secret_name, ("account_id", "password"), forbidden=_NOT_XML)
        return cls(account_id=account_id, password=password)


def validate_ticket_id(ticket_id: object) -> str:
    """A ticket id we are willing to send: non-empty, at most 64 characters, no control characters."""
    if not isinstance(ticket_id, str) or not ticket_id.strip():
        raise InvalidRequest("an OpenMarket ticket id must be a non-empty string")
    if len(ticket_id) > TICKET_ID_MAX_LENGTH:
        raise InvalidRequest(f"an OpenMarket ticket id has at most {TICKET_ID_MAX_LENGTH} characters")
    if _CONTROL.search(ticket_id) or _NOT_XML.search(ticket_id):
        raise InvalidRequest("an OpenMarket ticket id cannot contain control characters")
    return ticket_id


def check_user_agent(user_agent: str) -> str:
    """`[DevelopmentEnvironment]/SMS/[Version0.0.0]`, at most 60 characters (a configuration value, hence ValueError)."""
    if not user_agent or len(user_agent) > USER_AGENT_MAX_LENGTH or _CONTROL.search(user_agent) or _NOT_XML.search(user_agent):
        raise ValueError(f"the OpenMarket user agent must be 1 to {USER_AGENT_MAX_LENGTH} printable characters")
    return user_agent


def build_query(credentials: OpenMarketCredentials, ticket_id: str, user_agent: str) -> bytes:
    """The wmp query document, UTF-8. ElementTree escapes & < > " in attribute values (and tabs/newlines)."""
    check_user_agent(user_agent)
    request = ET.Element("request", {"version": "3.0", "protocol": "wmp", "type": "query"})
    ET.SubElement(request, "user", {"agent": user_agent})
    ET.SubElement(request, "account", {"id": credentials.account_id, "password": credentials.password})
    ET.SubElement(request, "ticket", {"id": validate_ticket_id(ticket_id)})
    return XML_DECLARATION + ET.tostring(request, encoding="utf-8", xml_declaration=False)


def parse_response(ticket_id: str, body: bytes, http_status: int, checked_at: datetime | None = None) -> Report:
    """The report for one query answer (2xx or 4xx: rejected requests carry their error code in a 4xx body).

    `error@code` 0 -> the message status; 711 -> not_found; auth codes -> ProviderAuthError; 1010/1020 ->
    ProviderUnavailable; any other code, or a body that is not a wmp response -> ProviderError.
    """
    checked_at = checked_at or utcnow()
    root = _parse(body, http_status)
    error = root.find("error")
    error_code = _code(error)
    if error is None or error_code is None:
        raise ProviderError(str(PROVIDER), "OpenMarket answered without a readable error code", http_status=http_status)
    error_description = error.get("description") or None

    if error_code != NO_ERROR:
        if error_code in NOT_FOUND_ERROR_CODES:
            return not_found(PROVIDER, ticket_id, str(error_code), error_description, checked_at=checked_at)
        raise _request_error(error_code, error_description, http_status)
    if not 200 <= http_status < 300:
        # "No error" in a rejected response is a contradiction; trust neither half.
        raise ProviderError(str(PROVIDER), f"OpenMarket answered HTTP {http_status} with error code 0", "0", error_description, http_status)

    status = root.find("status")
    raw_code = (status.get("code") or "").strip() if status is not None else ""
    if status is None or not raw_code:
        raise ProviderError(str(PROVIDER), "OpenMarket accepted the query but sent no status code", "0", error_description, http_status)
    # A non-numeric code is still an answer: keep it raw as UNKNOWN rather than guess or fail.
    outcome = classify(int(raw_code)) if _DIGITS.fullmatch(raw_code) else UNKNOWN_OUTCOME
    return Report.from_outcome(
        PROVIDER,
        ticket_id,
        outcome,
        ProviderStatus(raw_code, status.get("description") or None),
        checked_at=checked_at,
    )


def _parse(body: bytes, http_status: int) -> ET.Element:
    try:
        root = fromstring(body, forbid_dtd=True)
    except (ParseError, DefusedXmlException) as exc:
        # DTDs are refused outright: that is what stops entity bombs and XXE before any expansion.
        reason = "a DTD or entity declaration" if isinstance(exc, DefusedXmlException) else "a body that is not well-formed XML"
        raise ProviderError(str(PROVIDER), f"OpenMarket answered HTTP {http_status} with {reason}", http_status=http_status) from exc
    if root.tag != "response":
        raise ProviderError(
            str(PROVIDER), f"OpenMarket answered HTTP {http_status} with XML that is not a wmp response", http_status=http_status
        )
    return root


def _code(element: ET.Element | None) -> int | None:
    raw = (element.get("code") or "").strip() if element is not None else ""
    return int(raw) if _DIGITS.fullmatch(raw) else None


def _request_error(code: int, description: str | None, http_status: int) -> Exception:
    if code in AUTH_ERROR_CODES:
        return ProviderAuthError(str(PROVIDER), "OpenMarket refused the account id or password", str(code), description)
    if code in TEMPORARY_ERROR_CODES:
        return ProviderUnavailable(str(PROVIDER), f"OpenMarket reported a temporary error (code {code})", http_status=http_status)
    return ProviderError(str(PROVIDER), f"OpenMarket rejected the query (error code {code})", str(code), description, http_status)


class OpenMarketClient:
    """One status query per ticket: `POST {base_url}/wmp`, Content-Type text/xml."""

    def __init__(self, http: HttpClient, base_url: str, credentials: OpenMarketCredentials, user_agent: str) -> None:
        self._http = http
        self._url = base_url.rstrip("/") + WMP_PATH
        self._credentials = credentials
        self._user_agent = check_user_agent(user_agent)

    def status(self, ticket_id: str) -> Report:
        body = build_query(self._credentials, validate_ticket_id(ticket_id), self._user_agent)
        response = self._http.send("POST", self._url, headers={"Content-Type": CONTENT_TYPE, "Accept": CONTENT_TYPE}, body=body)
        return parse_response(ticket_id, response.body, response.status)
