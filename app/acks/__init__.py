"""What on-call contacts answer: a reply by SMS, a key on the notification call, the email's
link. Acknowledging stops a message's escalation (`service.py`); the rest reads the answer and
says back where the message stands. Above `app/dispatch/`, which sends the notifications."""
