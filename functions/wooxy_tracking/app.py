"""The Wooxy tracking function: batches from Wooxy's tracking and re-check queues (docs/queue.md)."""

from sms_status.model import Provider
from sms_status.observability import logger
from sms_status.tracking import handle_batch


@logger.inject_lambda_context
def lambda_handler(event, context):
    return handle_batch(Provider.WOOXY, event, context)
