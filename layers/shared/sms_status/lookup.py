"""Looking up many messages at one provider: the one piece the API, the queue path and the state machine share.

- Ids are collapsed to distinct values, request order kept, and validated before any provider request.
- Credentials come from a SecretSource; when the provider refuses them, the secret is read again once
  (it may have been rotated) and the whole lookup is tried again.
- OpenMarket and WWT answer one message per request: a batch fans out over a bounded thread pool.
  Wooxy takes up to 100 ids per request: its service sends chunks of 100 one after another instead.
- Every lookup has one deadline (`http.Deadline`, BATCH_DEADLINE seconds), set in scope for every request it
  makes: a single id, a Wooxy batch, each id of a fan-out and the retry after a credentials refresh all share
  it, and the HTTP layer enforces it. Ids not answered by then get `provider_timeout` error reports (or, when
  no id got an answer, the lookup raises ProviderTimeout: a 504), always before the function's own timeout.
- Fan-out threads never outlive the call: when a round ends (all answered, the deadline, a refused secret)
  its requests still in flight are cut (`Deadline.cancel`) and the pool is joined, so a warm container never
  has more than `fan_out` requests in flight for one provider.
- In a batch, a provider failure for one id becomes an error report for that id (status `unknown`,
  not final, the error under `details.error`) so one bad answer does not lose the others; when no id got an
  answer, the (first) error itself is raised (the caller gets 503/504 rather than a page of errors).
- A refused secret stops the fan-out at once; the retry with the re-read secret shares the same deadline.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any, Literal

from .credentials import SecretSource
from .errors import CredentialsError, InvalidRequest, ProviderAuthError, ProviderTimeout, ProviderUnavailable, ServiceError
from .http import Deadline, deadline_scope
from .model import Provider, ProviderStatus, Report, Status
from .validation import check_key

Kind = Literal["id", "reference"]
# The body field that carries each kind of key, in the API's batches and the queue's messages.
KEY_FIELDS: dict[str, Kind] = {"ids": "id", "references": "reference"}
# What each provider can be asked by: WWT also takes the reference its sender gave a message.
KINDS: dict[Provider, frozenset[Kind]] = {
    Provider.OPENMARKET: frozenset({"id"}),
    Provider.WOOXY: frozenset({"id"}),
    Provider.WWT: frozenset({"id", "reference"}),
}
MAX_BATCH = 100  # ids per HTTP batch call (pinned): also Wooxy's per-request limit
MIN_RETRY_SECONDS = 0.5  # what the retry after a credentials refresh needs at least, beyond reading the secret


def as_key(value: object, provider: Provider, kind: Kind) -> object:
    """WWT message ids are integers (the contract): a JSON number is taken as its decimal string. Anything else is
    returned as it is, for the caller's validation to judge."""
    if provider is Provider.WWT and kind == "id" and isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    return value


def distinct(keys: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(keys))


def error_report(provider: Provider, key: str, error: ServiceError) -> Report:
    """A report that says the lookup of this one id failed, and how (kept apart from what the message did)."""
    return Report(
        provider=provider,
        id=key,
        status=Status.UNKNOWN,
        final=False,
        retryable=isinstance(error, ProviderTimeout | ProviderUnavailable),
        provider_status=ProviderStatus(getattr(error, "provider_code", None) or error.code, error.message),
        details={"error": error.to_body()["error"]},
    )


def failed_lookup(report: Report) -> str | None:
    """The error code when `report` is an `error_report` (the lookup of that id failed), None for a real answer."""
    error = (report.details or {}).get("error")
    return str(error.get("code", "provider_error")) if isinstance(error, dict) else None


class StatusService:
    """One provider's lookups. Subclasses say how to call their client; everything else is shared."""

    provider: Provider

    @property
    def kinds(self) -> frozenset[Kind]:
        return KINDS[self.provider]

    def __init__(self, secrets: SecretSource[Any], make_client: Callable[[Any], Any], fan_out: int = 10, deadline: float = 20.0) -> None:
        self.secrets = secrets
        self.make_client = make_client
        self.fan_out = fan_out
        self.deadline = deadline  # seconds a whole fan-out may take: it must end before the function times out

    # ---- what subclasses provide ------------------------------------------------------------------
    def validate(self, key: str, kind: Kind) -> None:
        """Raise InvalidRequest for a key the provider cannot have; called before any request."""

    def fetch_one(self, client: Any, key: str, kind: Kind) -> Report:
        raise NotImplementedError

    def fetch(self, client: Any, keys: list[str], kind: Kind, deadline: Deadline) -> list[Report]:
        """Default: one request per key, at most `fan_out` at a time, all ended by `deadline`."""
        if len(keys) == 1:
            return [self.fetch_one(client, keys[0], kind)]  # the deadline in scope bounds it (the HTTP layer)

        def attempt(key: str) -> Report | ServiceError:
            try:
                return self.fetch_one(client, key, kind)
            except CredentialsError:
                raise  # the whole batch is retried with a fresh secret, or fails as one
            except ServiceError as error:
                return error

        round_ = deadline.child()  # cancelled when this round ends; a retry round gets its own
        pool = ThreadPoolExecutor(max_workers=min(self.fan_out, len(keys)), thread_name_prefix=f"{self.provider}-lookup")
        try:
            with deadline_scope(round_):
                # One copy of the context per task: each thread sees the round's deadline.
                futures = [pool.submit(contextvars.copy_context().run, attempt, key) for key in keys]
            # Returns at the first refused secret (no point asking the rest with it), when all are done, or at the deadline.
            done, _ = wait(futures, timeout=max(0.0, round_.remaining()), return_when=FIRST_EXCEPTION)
        finally:
            round_.cancel()  # requests still in flight end now: nothing outlives the call
            pool.shutdown(wait=True, cancel_futures=True)  # ids not started by then are not asked at all
        for future in done:
            if future.exception() is not None:
                raise future.exception()
        late = ProviderTimeout(str(self.provider), f"no answer within the lookup deadline of {self.deadline:g}s")
        # The pool is joined: every future is settled. An answer that came in as the round ended is kept.
        answered = [not f.cancelled() and f.exception() is None for f in futures]
        return gather(self.provider, keys, [f.result() if ok else late for f, ok in zip(futures, answered, strict=True)])

    # ---- the entry points --------------------------------------------------------------------------
    def lookup(self, keys: Sequence[str], kind: Kind = "id", seconds: float | None = None) -> list[Report]:
        """One report per distinct key, in the order given, within `seconds` (at most the service's deadline)."""
        if kind not in self.kinds:
            raise InvalidRequest(f"{self.provider} messages cannot be looked up by {kind}")
        keys = distinct(keys)
        for key in keys:
            check_key(key, kind)
            self.validate(key, kind)
        # One deadline, shared by the retry after a credentials refresh.
        deadline = Deadline(self.deadline if seconds is None else max(0.0, min(self.deadline, seconds)))
        with deadline_scope(deadline):
            return self._with_rotation(lambda client: self.fetch(client, keys, kind, deadline), deadline)

    def _with_rotation[R](self, call: Callable[[Any], R], deadline: Deadline) -> R:
        try:
            return call(self.make_client(self.secrets.get()))
        except ProviderAuthError:
            if deadline.remaining() < getattr(self.secrets, "read_budget", 0.0) + MIN_RETRY_SECONDS:
                raise  # no time left to re-read the secret and ask again: the refusal is the answer (not a 504)
            # The secret may have been rotated since we cached it: read it again, once.
            return call(self.make_client(self.secrets.get(refresh=True)))


def gather(provider: Provider, keys: Sequence[str], outcomes: Sequence[Report | ServiceError]) -> list[Report]:
    """One report per key from each key's answer or error; when no key got an answer, the (first) error is raised
    (503/504 rather than a page of errors)."""
    errors = [o for o in outcomes if isinstance(o, ServiceError)]
    if errors and len(errors) == len(outcomes):
        raise errors[0]
    return [o if isinstance(o, Report) else error_report(provider, key, o) for key, o in zip(keys, outcomes, strict=True)]
