"""A client's messages as the client sees them, in the portal and through /api/v1: its own only,
a page at a time, and what it may do with them (acknowledge, record a call back, close)."""
