"""The sandbox page: what the development sandbox sent instead of texting, ringing and emailing."""
