"""The OpenMarket tracking function: batches from OpenMarket's tracking and re-check queues (docs/queue.md)."""

from sms_status.config import Configured
from sms_status.model import Provider
from sms_status.observability import logger
from sms_status.tracking import handle_batch, provider_tracker

tracker = Configured(lambda env: provider_tracker(Provider.OPENMARKET, env))


@logger.inject_lambda_context
def lambda_handler(event, context):
    return handle_batch(tracker(), event, context)
