"""The event path: the webhook inbox resource and ``aurora_webhook_sensor`` (built from Settings)."""
