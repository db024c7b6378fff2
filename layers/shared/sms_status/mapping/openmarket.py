"""OpenMarket v3 (wmp): what every `status@code` means, and which `error@code` values are special.

The one place that says what an OpenMarket code means. Sources: the official
v3 "Response and Delivery Receipt Codes" page, the livesafe and Tatango copies of the code list, the v4
docs for 711/830/831). Codes are matched as numbers only: descriptions differ between docs and live.

OpenMarket's own rule: 0 and 4 mean success, 1/2/3 mean "still in process", every other code is a problem
with the request, the account or reaching the handset. So the problem codes are final, except the two whose
meaning nobody knows (581, 815), which stay open until the query window closes.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, replace
from datetime import timedelta

from ..model import UNKNOWN_OUTCOME, Outcome, Report, Status

# Status can be queried up to five days after submission (seed document); after that v4 answers 711.
QUERY_WINDOW = timedelta(days=5)

# OpenMarket's documented "retryable" list: resending the message may succeed. It says nothing about
# whether polling again changes the answer (that is `final`).
RETRYABLE_CODES = frozenset({351, 581, 811, 815, 1010, 1020})


@dataclass(frozen=True, slots=True)
class Row:
    first: int
    last: int
    status: Status
    final: bool
    meaning: str


# Runs at import only, before mutmut switches a mutant on: its mutants could never be killed, so none are made.
def _row(first: int, last: int | None, status: Status, final: bool, meaning: str) -> Row:  # pragma: no mutate block
    return Row(first, first if last is None else last, status, final, meaning)


# Rows in ascending order, non-overlapping. A range row covers the codes of a documented block that the
# public lists do not describe one by one; the block's class is the best evidence we have for them.
TABLE: tuple[Row, ...] = (
    # Code 0 "Message sent": OpenMarket says it is a success *only if it is the final receipt* (some
    # operators, e.g. US landlines, never send more). While polling we cannot know that, so it stays SENT and
    # not final; once the 5-day window closes the queue path promotes it to DELIVERED (on_window_closed).
    _row(0, None, Status.SENT, False, "Message sent"),
    _row(1, None, Status.PENDING, False, "Processing request"),
    _row(2, None, Status.PENDING, False, "Message accepted (not yet forwarded to the operator)"),
    _row(3, None, Status.SENT, False, "Message buffered with carrier and waiting for a response"),
    _row(4, None, Status.DELIVERED, True, "Message delivered"),
    # 5 is legacy (absent from current docs): "Transferred to carrier and waiting for buffered response".
    # The message is with the carrier and no receipt has come: that is SENT by our definition, not final.
    _row(5, None, Status.SENT, False, "Transferred to carrier, waiting for buffered response (legacy)"),
    # 301-323: the request itself was malformed (our bug, not the message's fate); final.
    _row(301, 323, Status.FAILED, True, "Request format error"),
    # 330-399: the submitted message failed validation (destination, text, source, billing, UDH...).
    # 351 is on the retryable list (operators misuse it), so it is retryable yet still final.
    _row(330, 399, Status.FAILED, True, "Message request failed validation"),
    _row(400, 409, Status.FAILED, True, "General error delivering to carrier"),
    _row(410, 419, Status.UNDELIVERED, True, "Recipient not found on carrier"),
    _row(420, 461, Status.FAILED, True, "Account, authentication or billing setup error"),
    _row(507, 514, Status.UNDELIVERED, True, "Carrier could not deliver (absent, failed, not equipped, not a subscriber)"),
    _row(560, 572, Status.REJECTED, True, "Recipient, content, short code or campaign blocked by the carrier"),
    # 581: on OpenMarket's retryable list but no public description anywhere. We do not know what it means,
    # so UNKNOWN (never guess) and not final: it becomes UNKNOWN final when the window closes.
    _row(581, None, Status.UNKNOWN, False, "Undocumented (listed as retryable)"),
    # 711 is v4's "after 5 days" code. v3 documents no "ticket not found"; we take it to mean the same here
    # (an inference from the v4 docs). As `error@code` the client turns it into a not_found report.
    _row(711, None, Status.NOT_FOUND, True, "Status no longer available (after 5 days; v4 code)"),
    _row(800, 809, Status.FAILED, True, "Service list or service id error"),
    _row(810, None, Status.UNDELIVERED, True, "Failed message delivery"),
    # 811: the carrier let the validity period run out. Retryable (resend), and the message itself is over.
    _row(811, None, Status.EXPIRED, True, "Message expired by carrier"),
    _row(812, 814, Status.FAILED, True, "Service or delivery error"),
    # 815: submitted to the carrier but never acknowledged. Nobody knows the fate, an acknowledgement may
    # still come, and OpenMarket lists it as retryable: UNKNOWN, not final until the window closes.
    _row(815, None, Status.UNKNOWN, False, "Submitted to but not acknowledged by carrier"),
    # 830/831 (v4 multipart summaries). 830: at least one part failed, final. 831: some parts still lack a
    # receipt, so the message is with the carrier and may still change.
    _row(830, None, Status.UNDELIVERED, True, "Partial message delivery failure (multipart)"),
    _row(831, None, Status.SENT, False, "Awaiting complete message delivery status (multipart)"),
    _row(1000, 1009, Status.FAILED, True, "System error"),
    # 1010/1020 are *temporary platform* errors, retryable by resending. As a message status the message
    # itself failed (OpenMarket says resend, not "will change"), so FAILED, final, retryable. As a request
    # error (`error@code`) they mean "try the query again later": the client raises ProviderUnavailable.
    _row(1010, None, Status.FAILED, True, "Temporary system error"),
    _row(1011, 1019, Status.FAILED, True, "System error"),
    _row(1020, None, Status.FAILED, True, "Temporary external system error"),
    _row(1021, 1030, Status.FAILED, True, "External system error"),
    _row(2001, 2010, Status.FAILED, True, "Billing, premium or subscription error"),
    # 2011 is filed under EXPIRED by the peer mappings we compared; no public description was found.
    _row(2011, None, Status.EXPIRED, True, "Expired (billing/premium block)"),
    _row(2012, 2126, Status.FAILED, True, "Billing, premium or subscription error"),
    # 3041/3042: blocked by OpenMarket's "deactivated numbers firewall": refused on purpose, not a failure
    # to reach the handset, so REJECTED.
    _row(3041, 3042, Status.REJECTED, True, "Blocked by the deactivated numbers firewall"),
    _row(4000, 4055, Status.FAILED, True, "Billing or refund error"),
)

_STARTS = [row.first for row in TABLE]


def find_row(code: int) -> Row | None:
    index = bisect_right(_STARTS, code) - 1
    if index >= 0 and TABLE[index].first <= code <= TABLE[index].last:
        return TABLE[index]
    return None


def classify(code: int) -> Outcome:
    """What a `status@code` means. Unknown codes are UNKNOWN and not final (re-checked until the window closes)."""
    row = find_row(code)
    if row is None:
        return UNKNOWN_OUTCOME
    return Outcome(row.status, row.final, retryable=code in RETRYABLE_CODES)


# ---- request-level codes (`error@code`) ----------------------------------------------------------------
# `error@code` is the outcome of the *query request*: 0 means the status element can be read.
NO_ERROR = 0
# The provider refused our credentials: the caller re-reads the secret once (it may have been rotated).
# 420 invalid subscriber id/password, 431 invalid subscriber id, 432 access permanently blocked,
# 433 access denied, 434 access expired. (430 "demo/commercial access required" is a provisioning matter
# that new credentials will not fix: it stays a plain provider error.)
AUTH_ERROR_CODES = frozenset({420, 431, 432, 433, 434})
# Temporary platform errors: the query can be tried again later (503, not 502).
TEMPORARY_ERROR_CODES = frozenset({1010, 1020})
# "No such ticket": v3 documents none; v4 answers 711 after 5 days (inference, see the 711 row above).
NOT_FOUND_ERROR_CODES = frozenset({711})


# ---- when the 5-day query window closes ----------------------------------------------------------------
# What a non-final answer becomes once OpenMarket can no longer be asked. Code 0 was the last receipt, so by
# OpenMarket's rule it was a successful delivery; anything else still open will never be resolved: UNKNOWN.
WINDOW_CLOSED: dict[int, Outcome] = {0: Outcome(Status.DELIVERED, final=True)}
WINDOW_CLOSED_DEFAULT_STATUS = Status.UNKNOWN


def outcome_after_window(code: int | None, outcome: Outcome) -> Outcome:
    """The final outcome for the last answer seen before the window closed (final outcomes are kept)."""
    if outcome.final:
        return outcome
    if code is not None and code in WINDOW_CLOSED:
        return WINDOW_CLOSED[code]
    return replace(outcome, status=WINDOW_CLOSED_DEFAULT_STATUS, final=True)


def on_window_closed(report: Report) -> Report:
    """The stored report, settled for good once the 5-day window has passed (the queue path calls this)."""
    if report.final:
        return report
    # Only a real status answer "sent (0)" is promoted; an error report that happens to carry "0" is not.
    code = _int_or_none(report.provider_status.code) if report.status is Status.SENT else None
    return report.with_status(outcome_after_window(code, Outcome(report.status, report.final, report.retryable)))


def _int_or_none(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None
