"""The bulk function: the Wooxy bulk routes and the bulk state machine's own steps. It never calls Wooxy (every
Wooxy request of a job runs in the chunk function), so it can wait for a job without holding one of Wooxy's slots."""

from aws_lambda_powertools.logging import correlation_paths

from sms_status.api import create_bulk_app
from sms_status.bulk import bulk_jobs, run_step
from sms_status.config import Configured
from sms_status.observability import logger

jobs = Configured(bulk_jobs)
app = create_bulk_app(jobs)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event, context):
    if "httpMethod" in event:
        return app.resolve(event, context)
    return run_step(event, jobs())
