"""The Wooxy chunk function: the bulk state machine's chunk task {"bulk_chunk": {job_id, index, ids}}, one Wooxy
request of at most 100 ids whose reports it stores (docs/bulk.md). Its reserved concurrency is bulk's share of
Wooxy's limit, so bulk jobs never take a slot from the API or the queues."""

from sms_status.bulk import run_chunk
from sms_status.model import Provider
from sms_status.observability import logger
from sms_status.services import look_up


@logger.inject_lambda_context
def lambda_handler(event, context):
    return run_chunk(event.get("bulk_chunk"), lambda ids: look_up(Provider.WOOXY, ids, via="bulk"))
