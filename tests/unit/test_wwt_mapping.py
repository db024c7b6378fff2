"""WWT status and error tables: every value the sources mention, and what each means."""

from __future__ import annotations

import pytest

from sms_status.mapping import wwt
from sms_status.mapping.wwt import ERROR_CODES, STATUSES, ErrorMeaning, classify, describe_error, error_meaning
from sms_status.model import Outcome, Status

# Written out by hand (not derived from STATUSES) so a changed row fails here.
EXPECTED_STATUSES = {
    "scheduled": (Status.PENDING, False),
    "moderation": (Status.PENDING, False),
    "accepted": (Status.PENDING, False),
    "sending": (Status.PENDING, False),
    "sent": (Status.SENT, False),
    "delivered": (Status.DELIVERED, True),
    "read": (Status.DELIVERED, True),
    "expired": (Status.EXPIRED, True),
    "failed": (Status.FAILED, True),
    "undelivered": (Status.UNDELIVERED, True),
    "undeliverable": (Status.UNDELIVERED, True),
    "not_viber_user": (Status.UNDELIVERED, True),
    "not_service_user": (Status.UNDELIVERED, True),
    "rejected": (Status.REJECTED, True),
    "unknown": (Status.UNKNOWN, False),
}

BSG_V2_ENUM = [
    "scheduled",
    "moderation",
    "accepted",
    "sending",
    "sent",
    "delivered",
    "expired",
    "failed",
    "undelivered",
    "unknown",
    "read",
    "not_viber_user",
    "not_service_user",
]
V1_TASK_COUNTERS = ["sent", "delivered", "expired", "undeliverable", "unknown"]

SEED_ERROR_DESCRIPTIONS = {
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


def test_table_covers_every_status_the_sources_mention_and_nothing_else():
    assert set(STATUSES) == set(BSG_V2_ENUM) | set(V1_TASK_COUNTERS) | {"rejected"}
    assert set(STATUSES) == set(EXPECTED_STATUSES)


@pytest.mark.parametrize(("raw", "expected"), EXPECTED_STATUSES.items())
def test_every_status_maps_as_documented(raw: str, expected: tuple[Status, bool]):
    outcome = classify(raw)
    assert (outcome.status, outcome.final) == expected
    assert outcome.retryable is False


@pytest.mark.parametrize("raw", ["DELIVERED", "Delivered", " delivered ", "Not_Viber_User"])
def test_classify_is_case_insensitive(raw: str):
    assert classify(raw) == STATUSES[raw.strip().lower()]


@pytest.mark.parametrize("raw", ["queued", "delivrd", "", "  ", "deleted"])
def test_unmapped_status_is_unknown_and_not_final(raw: str):
    assert classify(raw) == Outcome(Status.UNKNOWN, final=False)


def test_wwt_unknown_is_not_final_so_it_is_checked_again():
    assert classify("unknown").final is False


def test_error_table_is_the_seed_list():
    assert ERROR_CODES == SEED_ERROR_DESCRIPTIONS


@pytest.mark.parametrize("code", sorted(SEED_ERROR_DESCRIPTIONS))
def test_every_error_code_has_a_meaning_and_description(code: int):
    expected = {
        20: ErrorMeaning.NOT_FOUND,
        22: ErrorMeaning.REQUEST_REJECTED,
        24: ErrorMeaning.REQUEST_REJECTED,
        27: ErrorMeaning.REQUEST_REJECTED,
    }
    assert error_meaning(code) is expected.get(code, ErrorMeaning.PROVIDER_ERROR)
    assert describe_error(code) == SEED_ERROR_DESCRIPTIONS[code]


def test_invalid_api_key_code_is_an_auth_failure():
    assert wwt.INVALID_API_KEY == 1
    assert error_meaning(1) is ErrorMeaning.AUTH
    assert describe_error(1) == "Invalid API key"


@pytest.mark.parametrize("code", [2, 7, 19, 37, 41, 500])
def test_undocumented_error_codes_are_provider_errors_without_description(code: int):
    assert error_meaning(code) is ErrorMeaning.PROVIDER_ERROR
    assert describe_error(code) is None
