"""Built-in sync handlers: the demo ERP stand-in and the webhook caller."""

from archibald_actors.handlers.demo import DEMO_DURATIONS, DemoErp, demo_handlers
from archibald_actors.handlers.webhook import WebhookError, webhook_handler

__all__ = ["DEMO_DURATIONS", "DemoErp", "WebhookError", "demo_handlers", "webhook_handler"]
