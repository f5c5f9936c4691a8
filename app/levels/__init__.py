"""Service levels a client can check for itself: calls taken, messages, time to acknowledge,
to call back and for a PA to answer, per day and per week, in the client's own calendar."""
