"""The small HTML pages behind an email's acknowledge link. Pure; every value is escaped.

Email security scanners fetch links to check them, so opening the link must not acknowledge:
the page does, with a form POST that a line of script submits (the button is the fallback).
"""

from __future__ import annotations

from html import escape

from app.acks.inbound import Standing, Verdict


def _page(text: str, extra: str = "") -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<meta name='robots' content='noindex'><title>Nightdesk</title></head>"
        "<body style='font-family:sans-serif;margin:2em'>"
        f"<p>{escape(text)}</p>{extra}</body></html>"
    )


def confirm_page(standing: Standing) -> str:
    """Asks to take an open message, and does so at once where script runs."""
    form = (
        "<form method='post'><button type='submit' style='font-size:1.2em'>"
        "I'll take it</button></form><script>document.forms[0].submit()</script>"
    )
    return _page(f"Taking {standing.client} message #{standing.ref}…", form)


def outcome_page(standing: Standing) -> str:
    """Whose the message is now: 'Thanks, #4F is yours' or 'Sam Taylor already has #4F'."""
    match standing.verdict:
        case Verdict.yours | Verdict.open:
            return _page(f"Thanks, #{standing.ref} is yours.")
        case Verdict.taken:
            return _page(f"{standing.holder} already has #{standing.ref}.")
        case Verdict.expired:
            return _page(
                f"This link to {standing.client} message #{standing.ref} has expired, so "
                "nothing was changed. A newer notification, or a reply to its text, can still "
                "take it."
            )
        case _:
            return _page(f"#{standing.ref} is already closed.")


NOT_FOUND_PAGE = _page("This link isn't valid. It may have been cut short when it was copied.")
RECORDING_EXPIRED_PAGE = _page(
    "This link to a recording has expired. The message is in the portal for those who use it."
)
RECORDING_UNAVAILABLE_PAGE = _page(
    "Twilio did not hand the recording over just now. Please try again later."
)
