"""The tracked function: GET /tracked/{provider}/{id} from the status table only (see sms_status.api)."""

from aws_lambda_powertools.logging import correlation_paths

from sms_status.api import create_tracked_app
from sms_status.config import Configured, TrackedConfig
from sms_status.observability import logger
from sms_status.store import StatusStore

store = Configured(lambda env: StatusStore.from_name(TrackedConfig.from_env(env).status_table))
app = create_tracked_app(store)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event, context):
    return app.resolve(event, context)
