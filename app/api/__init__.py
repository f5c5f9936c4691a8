"""/api/v1: a client's messages and calls as JSON and CSV, for its own systems; and /docs."""
