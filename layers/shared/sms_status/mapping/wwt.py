"""WWT (a white-label of BSG): what each `status` string and each `error` code means.

WWT publishes no list of v1 status values. The table below covers every
value seen in the sources: the BSG v2 `MessageStatus` enum, the v1 task counters
(`sent, delivered, expired, undeliverable, unknown`) and `rejected`, which peer APIs use and
we take as a probable v1 value. Anything else is `unknown` (not final) with the raw value kept by the parser.
"""

from __future__ import annotations

from enum import StrEnum

from ..model import UNKNOWN_OUTCOME, Outcome, Status

_PENDING = Outcome(Status.PENDING, final=False)

STATUSES: dict[str, Outcome] = {
    # Still at WWT: not yet handed to a carrier.
    "scheduled": _PENDING,
    "moderation": _PENDING,  # content review before sending; it can still go either way
    "accepted": _PENDING,
    "sending": _PENDING,  # being handed over, no carrier acknowledgement yet
    # With the carrier, no delivery report yet. Not final: a DLR may still arrive.
    "sent": Outcome(Status.SENT, final=False),
    "delivered": Outcome(Status.DELIVERED, final=True),
    # Viber/RCS "read" comes after delivery: the message certainly reached the handset.
    "read": Outcome(Status.DELIVERED, final=True),
    "expired": Outcome(Status.EXPIRED, final=True),
    # v2 enum spelling and v1 task-counter spelling of the same carrier verdict.
    "undelivered": Outcome(Status.UNDELIVERED, final=True),
    "undeliverable": Outcome(Status.UNDELIVERED, final=True),
    # The recipient has no account on the channel (Viber / the OTT service): nothing the carrier could do,
    # and resending on the same channel will not help. Closest to "the handset could not take it".
    "not_viber_user": Outcome(Status.UNDELIVERED, final=True),
    "not_service_user": Outcome(Status.UNDELIVERED, final=True),
    # Not in the v2 enum; seen in peer taxonomies (Vonage, SMPP REJECTD) and listed as probable for v1.
    "rejected": Outcome(Status.REJECTED, final=True),
    # BSG does not say whether "failed" is platform- or carrier-side; our `failed` is the general failure.
    "failed": Outcome(Status.FAILED, final=True),
    # WWT's own "unknown": no receipt (yet). Not final: a late DLR can still turn it into delivered or
    # undelivered, so the queue path keeps re-checking it until the query window closes.
    "unknown": Outcome(Status.UNKNOWN, final=False),
}


def classify(status: str) -> Outcome:
    """The outcome of a WWT status string (case-insensitive). An unmapped value is `unknown`, not final:
    never guessed. The caller keeps the raw string in `provider_status.code`."""
    return STATUSES.get(status.strip().lower(), UNKNOWN_OUTCOME)


# Error codes of the status endpoints, as the seed document lists them (descriptions verbatim).
ERROR_CODES: dict[int, str] = {
    20: "SMS not found",
    21: "an incorrect phone number",
    22: "the external ID of the SMS request is missing",
    23: "SMS with this ID is already present",
    24: "invalid query payload",
    25: "incorrect originator",
    26: "empty or too long SMS text",
    27: "incorrect external SMS ID",
    28: "incorrect value of SMS duration",
    29: "the task id is incorrect",
    30: "task not found",
    31: "the phone is already in the messaging list",
    32: "sender not allowed",
    33: "unresolved direction",
    34: "invalid OTP, code generation error",
    35: "2WAY service is not activated",
    36: "incorrect sender for 2WAY",
}

# Not in the seed: bsg-python defines client code 1 "Invalid API key". We infer
# that the API itself answers with it for a wrong key; HTTP 401/403 mean the same whatever the body says.
INVALID_API_KEY = 1
NOT_FOUND = 20
# Codes that say our request itself was malformed. We validate ids and references before sending, so
# reaching one of these is a bug on our side or a change at WWT: an error, never a "not found".
REQUEST_REJECTED = frozenset({22, 24, 27})


class ErrorMeaning(StrEnum):
    NOT_FOUND = "not_found"  # a report with status not_found
    AUTH = "auth"  # ProviderAuthError: the secret is read again once (rotation)
    REQUEST_REJECTED = "request_rejected"  # ProviderError: WWT refused a request we had validated
    PROVIDER_ERROR = "provider_error"  # ProviderError: any other code, documented or not


def error_meaning(code: int) -> ErrorMeaning:
    """What a non-zero `error` code means for a status lookup."""
    if code == NOT_FOUND:
        return ErrorMeaning.NOT_FOUND
    if code == INVALID_API_KEY:
        return ErrorMeaning.AUTH
    if code in REQUEST_REJECTED:
        return ErrorMeaning.REQUEST_REJECTED
    return ErrorMeaning.PROVIDER_ERROR


def describe_error(code: int) -> str | None:
    if code == INVALID_API_KEY:
        return "Invalid API key"
    return ERROR_CODES.get(code)
