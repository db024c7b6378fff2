"""The Wooxy chunk function: the bulk state machine's chunk task {"bulk_chunk": {job_id, index, ids}}, one Wooxy
request of at most 100 ids whose reports it stores (docs/bulk.md). Its reserved concurrency is bulk's share of
Wooxy's limit, so bulk jobs never take a slot from the API or the queues."""

from sms_status.bulk import bulk_jobs, run_chunk
from sms_status.config import Configured
from sms_status.model import Provider
from sms_status.observability import logger
from sms_status.services import measured_lookup, provider_service

service = Configured(lambda env: provider_service(Provider.WOOXY, env))
jobs = Configured(bulk_jobs)  # its settings name no state machine: it stores chunks, never starts a job


@logger.inject_lambda_context
def lambda_handler(event, context):
    return run_chunk(event.get("bulk_chunk"), lambda ids: measured_lookup(service(), ids, via="bulk"), jobs().store)
