"""The wooxy function: the Wooxy API routes only (see sms_status.api); queue batches run in wooxy_tracking."""

from aws_lambda_powertools.logging import correlation_paths

from sms_status.api import create_app
from sms_status.config import Configured
from sms_status.model import Provider
from sms_status.observability import logger
from sms_status.services import provider_service

service = Configured(lambda env: provider_service(Provider.WOOXY, env))
app = create_app(Provider.WOOXY, service)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event, context):
    return app.resolve(event, context)
