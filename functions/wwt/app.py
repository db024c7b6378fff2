"""The wwt function: API routes, tracking-queue batches for wwt (see sms_status.dispatch)."""

from aws_lambda_powertools.logging import correlation_paths

from sms_status.api import create_app
from sms_status.dispatch import dispatch
from sms_status.model import Provider
from sms_status.observability import logger

app = create_app(Provider.WWT)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event, context):
    return dispatch(Provider.WWT, app, event, context)
