"""Records kept for clients, and for no longer than they ask: retention and purging (the
dispatcher module and `nightdesk purge`), and checking a message's hash-chained timeline."""
