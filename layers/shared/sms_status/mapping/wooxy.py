"""Wooxy v3 `data.<id>.status`: the single place that says what each documented status string means.

Source: the seed document "Get SMS Delivery Status". Six values are documented;
anything else is kept raw as `unknown`, never guessed.

No query window here: Wooxy documents no retention period for SMS status (an open question),
so nothing promotes a lingering `sent` the way OpenMarket's 5-day window does. Do not invent one.
"""

from __future__ import annotations

from ..model import UNKNOWN_OUTCOME, Outcome, Status

STATUSES: dict[str, Outcome] = {
    # "Messages start here. A temporary status before processing further": still inside Wooxy.
    "new": Outcome(Status.PENDING, final=False),
    # "Held in our internal queue, awaits delivery to the mobile network": inside Wooxy too, so the same
    # PENDING as `new`; the two differ only in Wooxy's internal bookkeeping.
    "queued": Outcome(Status.PENDING, final=False),
    # "Sent to the mobile network and on its way": with the carrier, no receipt yet. Not final: a receipt
    # may still turn it into delivered/undelivered/failed. It may also stay the last word if no receipt
    # ever arrives; with no documented window we cannot say when that is, so it stays non-final.
    "sent": Outcome(Status.SENT, final=False),
    # "The end user's mobile device has confirmed the delivery".
    "delivered": Outcome(Status.DELIVERED, final=True),
    # "Permanently undeliverable. Most likely an invalid MSISDN": the carrier/handset could not take it.
    # Not retryable: re-sending to the same number will fail the same way.
    "undelivered": Outcome(Status.UNDELIVERED, final=True),
    # Debatable. Wooxy folds two different causes into `failed`: "mobile network rejected the message"
    # (our REJECTED) and "exceeded its validity period without a delivery confirmation" (our EXPIRED), and
    # the response does not say which. Picking either would be a guess that is wrong half the time, so
    # this is the umbrella FAILED (final failure) and the raw "failed" stays in provider_status.
    # retryable=False for the same reason: it is only worth re-sending after an expiry, not a rejection.
    "failed": Outcome(Status.FAILED, final=True),
}


def classify(status: str) -> Outcome:
    """The outcome of one Wooxy status string (case and surrounding whitespace ignored); unknown if undocumented."""
    return STATUSES.get(status.strip().lower(), UNKNOWN_OUTCOME)
