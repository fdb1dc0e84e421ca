"""The aggregator: streams every family once from Redis on `/metrics`."""
