"""The words a contact or caller gets: SMS bodies that fit two segments, call scripts, emails. Pure.

Carriers filter links and long bursts, so SMS bodies carry no links by default and are cut to fit
two segments: 306 characters in GSM-7, or 134 when any character needs UCS-2.
https://www.twilio.com/docs/glossary/what-sms-character-limit

In privacy mode (`MessageSummary.private`) texts and emails carry no content: not the caller's
name or number, nor their answers, voicemail or recording; only the client, the urgency and the
reference, and that the details are in the portal.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.flows.understanding import read_back

if TYPE_CHECKING:
    from app.messages.models import Message

_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("^{}\\[~]|€")  # each costs two characters
WITHHELD = {"", "anonymous", "restricted", "unknown", "private", "+266696687", "+7378742833"}
NAME_KEYS = ("name", "patient_name", "caller_name", "full_name")
URGENCIES = ("routine", "urgent", "emergency")
DETAILS_IN_THE_PORTAL = "details in the portal"


@dataclass(frozen=True)
class MessageSummary:
    """What a notification says about a message, independent of how it is sent."""

    client: str
    ref: str
    caller: str
    urgency: str
    answers: Mapping[str, Any]
    transcription: str | None
    private: bool = False  # the client's privacy mode: say there is a message, not what it is
    portal_link: str | None = None  # the message in the portal, for emails
    overdue: bool = False  # paged again: the call back someone promised is overdue

    @classmethod
    def of(
        cls,
        message: Message,
        client: str,
        *,
        private: bool = False,
        portal: str | None = None,
        overdue: bool = False,
    ) -> MessageSummary:
        """The summary of a stored message, for a client called `client`; `portal` is the
        service's public URL, for emails to link to the message; `overdue`: a page sent again
        because a promised call back is late."""
        from app.messages.models import message_ref  # the models import the database layer

        return cls(
            client=client,
            ref=message_ref(message.id),
            caller=message.caller,
            urgency=message.urgency,
            answers=message.answers,
            transcription=message.transcription,
            private=private,
            portal_link=f"{portal}/portal/messages/{message.id}" if portal else None,
            overdue=overdue,
        )

    @property
    def caller_name(self) -> str | None:
        for key in NAME_KEYS:
            if value := self.answers.get(key):
                return str(value)
        return None

    @property
    def callback(self) -> str:
        return str(self.answers.get("callback") or self.caller)

    @property
    def gist(self) -> str:
        """What the caller said: the voicemail, then their answers; "" when they said nothing
        beyond their name and number. An answer that only restates the urgency (a menu's
        "reason: routine") says nothing the label doesn't, so it is left out."""
        parts = [self.transcription] if self.transcription else []
        parts += [
            f"{k.replace('_', ' ')}: {v}"
            for k, v in self.answers.items()
            if k not in (*NAME_KEYS, "callback") and v and not restates_urgency(v)
        ]
        return "; ".join(parts)


def restates_urgency(value: object) -> bool:
    """An answer such as "routine" or "emergency": the menu choice that set the urgency."""
    return str(value).strip().lower() in URGENCIES


def sms_length(text: str) -> tuple[int, int]:
    """(characters counted, characters per two segments) for this text's encoding."""
    if all(c in _GSM7 or c in _GSM7_EXTENDED for c in text):
        return sum(2 if c in _GSM7_EXTENDED else 1 for c in text), 306
    return len(text), 134


def _fits(text: str) -> bool:
    used, limit = sms_length(text)
    return used <= limit


ELLIPSIS = "..."  # GSM-7, so it never changes the encoding of the text it ends


def fit_two_segments(text: str) -> str:
    """Cut the text (with '...', which keeps GSM-7 text in GSM-7) to at most two SMS segments."""
    if _fits(text):
        return text
    return text[: _longest_prefix_fitting(text, len(ELLIPSIS))].rstrip() + ELLIPSIS


def _longest_prefix_fitting(text: str, room: int) -> int:
    """How many of the text's first characters fit two segments with `room` GSM-7 characters to
    spare. One pass, stopping where the prefix stops fitting: never more than 307 characters are
    looked at, however long the text (a transcription can be megabytes).

    A longer prefix never fits where a shorter one doesn't: a GSM-7 prefix grows in cost, and
    one character outside GSM-7 makes every longer prefix UCS-2 (134 characters); a GSM-7
    prefix of n characters costs at most 2n, so one that fits in UCS-2 fits in GSM-7 too."""
    gsm_cost, ucs2 = 0, False
    for length, character in enumerate(text, start=1):
        if character in _GSM7:
            gsm_cost += 1
        elif character in _GSM7_EXTENDED:
            gsm_cost += 2
        else:
            ucs2 = True  # for this prefix and every longer one
        used, limit = (length, 134) if ucs2 else (gsm_cost, 306)
        if used + room > limit:
            return length - 1
    return len(text)


def _who(summary: MessageSummary) -> str:
    name = summary.caller_name
    return f"{name} ({summary.callback})" if name else summary.callback


def notification_sms(summary: MessageSummary) -> str:
    """'URGENT Acme Plumbing #4F: Sam Taylor (+44…): boiler leaking. Reply 1 to take it.'"""
    if summary.private:
        return private_notification_sms(summary)
    label = _overdue(summary) + (
        "" if summary.urgency == "routine" else f"{summary.urgency.upper()} "
    )
    tail = f" Reply 1 to take it (ACK {summary.ref} if several)."
    if not summary.gist:  # name and number only: nothing to add after them
        return fit_two_segments(f"{label}{summary.client} #{summary.ref}: {_who(summary)}.{tail}")
    head = f"{label}{summary.client} #{summary.ref}: {_who(summary)}: "
    room = 306 - len(head) - len(tail) - 1
    gist = summary.gist if len(summary.gist) <= room else summary.gist[: max(room - 3, 0)] + "..."
    if not gist.endswith((".", "!", "?")):
        gist += "."
    return fit_two_segments(head + gist + tail)


def private_notification_sms(summary: MessageSummary) -> str:
    """Privacy mode: 'New urgent message for Riverside Medical Group #4F, reply 1 to take it
    (ACK 4F if several); details in the portal.' Nothing the caller said, nor who they are."""
    return fit_two_segments(
        f"{_overdue(summary)}New {_kind(summary)}for {summary.client} #{summary.ref}, reply 1 to "
        f"take it (ACK {summary.ref} if several); {DETAILS_IN_THE_PORTAL}."
    )


OVERDUE = "Call back overdue"


def _overdue(summary: MessageSummary) -> str:
    """What a page sent again because a promised call back is late starts with."""
    return f"{OVERDUE.upper()}: " if summary.overdue else ""


def _overdue_said(summary: MessageSummary) -> str:
    """The same, as a spoken sentence."""
    return "The call back promised for this message is overdue. " if summary.overdue else ""


def _kind(summary: MessageSummary) -> str:
    """'urgent message ', 'message ' (routine is the ordinary case: not worth a word)."""
    return "message " if summary.urgency == "routine" else f"{summary.urgency} message "


def bundle_sms(client: str, summaries: list[MessageSummary]) -> str:
    """Several messages for one contact in one text, as carriers ask: '3 new messages for …'."""
    lines = [f"{len(summaries)} new messages for {client}:"]
    lines += [_bundle_line(s) for s in summaries]
    ending = "Reply 1 to take them all, or ACK and a # for one."
    if any(s.private for s in summaries):
        ending = ending[:-1] + f"; {DETAILS_IN_THE_PORTAL}."
    lines.append(ending)
    return fit_two_segments("\n".join(lines))


def _bundle_line(summary: MessageSummary) -> str:
    late = f" ({OVERDUE.lower()})" if summary.overdue else ""
    if summary.private:
        return f"#{summary.ref} {summary.urgency}{late}"
    said = f": {summary.gist[:60]}" if summary.gist else ""
    return f"#{summary.ref}{late} {_who(summary)}{said}"


def call_script(summary: MessageSummary) -> str:
    """What the notification call reads out: the number digit by digit so it can be written down.
    In privacy mode the call reads it only once the contact's PIN is right
    (`app.acks.pin`)."""
    number = summary.callback
    spoken = read_back(number) if number.startswith("+") else number
    name = summary.caller_name or "A caller"
    said = f" They said: {summary.gist}." if summary.gist else ""
    return (
        f"This is Nightdesk with {_a_message(summary)} for {summary.client}, "
        f"reference {' '.join(summary.ref)}. {_overdue_said(summary)}"
        f"{name} called. Their number is {spoken}.{said}"
    )


def pin_prompt(summary: MessageSummary, language: str, *, again: bool = False) -> str:
    """Privacy mode, before anything about the message: who it is for, and the PIN to key."""
    key = "pound" if language.lower().startswith("en-us") else "hash"
    if again:
        return f"That PIN isn't right. Please enter your PIN, then press the {key} key."
    return (
        f"This is Nightdesk with {_a_message(summary)} for {summary.client}. "
        f"{_overdue_said(summary)}Please enter your PIN, then press the {key} key."
    )


CALL_PIN_REFUSED = "That PIN isn't right. Please check the message in the portal. Goodbye."


def _a_message(summary: MessageSummary) -> str:
    """'a message', 'an urgent message', 'an emergency message'."""
    if summary.urgency == "routine":
        return "a message"
    article = "an" if summary.urgency[0] in "aeiou" else "a"
    return f"{article} {summary.urgency} message"


CALL_OPTIONS = (
    "Press 1 to take this message. Press 2 to hear it again. "
    "Press 3 to be connected to the caller now."
)
CALL_NOT_AN_OPTION = "Sorry, that isn't one of the options."
CALL_TAKEN = "Thank you. The message is yours. Goodbye."
CALL_CONNECTING = "Connecting you to the caller now."
CALL_NO_NUMBER = (
    "The caller didn't leave a number we can connect you to. The message is yours. Goodbye."
)
CALL_TRY_LATER = "We'll try you again shortly. Goodbye."
CALL_CLOSED = "This message has already been closed. Goodbye."
CALL_GONE = "This is Nightdesk. This message is no longer waiting for anyone. Goodbye."


def voicemail_notice(summary: MessageSummary) -> str:
    """Left on an answering machine: no details, as a voicemail box may be shared."""
    return (
        f"This is Nightdesk with {_a_message(summary)} for {summary.client}. "
        f"{_overdue_said(summary)}Please check your text messages."
    )


def call_taken_by_other(holder: str) -> str:
    return f"{holder} already has this message. Thank you. Goodbye."


def email_subject(summary: MessageSummary) -> str:
    label = f"[{OVERDUE.upper()}] " if summary.overdue else ""
    label += "" if summary.urgency == "routine" else f"[{summary.urgency.upper()}] "
    if summary.private:
        return f"{label}New message for {summary.client} (#{summary.ref})"
    return f"{label}New message for {summary.client} from {_who(summary)} (#{summary.ref})"


def email_bodies(
    summary: MessageSummary, recording_link: str | None, ack_url: str, ack_days: int
) -> tuple[str, str]:
    """(plain text, HTML) with a link to play the recording through Nightdesk and a one-click
    acknowledge link, both working for `ack_days` days."""
    if summary.private:
        return private_email_bodies(summary, ack_url, ack_days)
    lines = [
        f"{_overdue(summary)}{summary.client}: a message from {_who(summary)}",
        f"Urgency: {summary.urgency}",
        "",
        *(f"{k.replace('_', ' ').capitalize()}: {v}" for k, v in summary.answers.items()),
    ]
    if summary.transcription:
        lines += ["", f"Voicemail: {summary.transcription}"]
    if recording_link:
        lines += [f"Listen to the recording: {recording_link}"]
    valid = f"{'These links work' if recording_link else 'This link works'} for {_days(ack_days)}."
    lines += ["", f"I'll take it: {ack_url}", valid, "", f"Reference #{summary.ref}"]
    text = "\n".join(lines)
    rows = "".join(
        f"<tr><th align='left'>{html.escape(k.replace('_', ' ').capitalize())}</th>"
        f"<td>{html.escape(str(v))}</td></tr>"
        for k, v in summary.answers.items()
    )
    voicemail = (
        f"<p><strong>Voicemail:</strong> {html.escape(summary.transcription)}</p>"
        if summary.transcription
        else ""
    )
    recording = (
        f"<p><a href='{html.escape(recording_link)}'>Listen to the recording</a></p>"
        if recording_link
        else ""
    )
    body = (
        f"<h2>{_overdue(summary)}{html.escape(summary.client)}: message from "
        f"{html.escape(_who(summary))}</h2>"
        f"<p>Urgency: <strong>{html.escape(summary.urgency)}</strong></p>"
        f"<table>{rows}</table>{voicemail}{recording}"
        f"<p><a href='{html.escape(ack_url)}' style='font-size:1.2em'>I'll take it</a><br>"
        f"<small>{valid}</small></p>"
        f"<p style='color:#666'>Reference #{html.escape(summary.ref)}</p>"
    )
    return text, body


def private_email_bodies(summary: MessageSummary, ack_url: str, ack_days: int) -> tuple[str, str]:
    """Privacy mode: that a message is waiting, its reference and links; nothing the caller said,
    nor who they are, nor the recording."""
    valid = f"This link works for {_days(ack_days)}."
    where = f"Read it in the portal: {summary.portal_link}" if summary.portal_link else (
        "Read it in the portal."
    )  # fmt: skip
    text = "\n".join([
        f"{_overdue(summary)}New {_kind(summary)}for {summary.client}, reference #{summary.ref}.",
        f"Its {DETAILS_IN_THE_PORTAL}: {summary.client} keeps messages out of email.", "",
        where, "", f"I'll take it: {ack_url}", valid,
    ])  # fmt: skip
    portal = (
        f"<p><a href='{html.escape(summary.portal_link)}'>Read it in the portal</a></p>"
        if summary.portal_link
        else ""
    )
    body = (
        f"<h2>{_overdue(summary)}New {html.escape(_kind(summary))}for "
        f"{html.escape(summary.client)}</h2>"
        f"<p>Reference #{html.escape(summary.ref)}. Its {DETAILS_IN_THE_PORTAL}: "
        f"{html.escape(summary.client)} keeps messages out of email.</p>"
        f"{portal}<p><a href='{html.escape(ack_url)}' style='font-size:1.2em'>I'll take it</a>"
        f"<br><small>{valid}</small></p>"
    )
    return text, body


def _days(count: int) -> str:
    return "1 day" if count == 1 else f"{count} days"


def caller_taken_sms(client: str) -> str:
    return f"Your message for {client} has been passed to the person on call. They'll be in touch."


def caller_acknowledged_sms(client: str, contact_name: str) -> str:
    return f"{contact_name} from {client} has your message and will call you back."


def taken_by_other_sms(client: str, ref: str, contact_name: str) -> str:
    return f"{client} #{ref}: {contact_name} has taken this message. No need to call back."


def acknowledged_sms(client: str, refs: list[str]) -> str:
    which = ", ".join(f"#{r}" for r in refs)
    return f"Thanks, {client} {which} {'is' if len(refs) == 1 else 'are'} yours."


def already_taken_sms(holder: str, ref: str) -> str:
    return f"{holder} already has #{ref}."


def already_closed_sms(ref: str) -> str:
    return f"#{ref} is already closed."


def no_such_message_sms(ref: str) -> str:
    return f"There's no open message #{ref} for you."


NOTHING_OPEN_SMS = "You have no open messages."
UNKNOWN_SENDER_SMS = (
    "This number sends Nightdesk notifications and can't take messages. Please call it instead."
)
NOT_UNDERSTOOD_SMS = (
    "Sorry, I didn't understand. Reply 1 to take your message, or ACK and its number."
)


def which_message_sms(refs: list[str]) -> str:
    """'You have 3 open messages: reply ACK 4F, ACK 4G or ACK 4H.'"""
    choices = [f"ACK {r}" for r in refs]
    listed = ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 else choices[0]
    return fit_two_segments(f"You have {len(refs)} open messages: reply {listed}.")


def help_sms(clients: list[str]) -> str:
    return fit_two_segments(
        f"Nightdesk notifications for {_and(clients)}. Reply 1 to take a message, "
        "ACK 4F for one of several, STOP to stop texts."
    )


def resubscribed_sms(clients: list[str]) -> str:
    return fit_two_segments(
        f"You'll get Nightdesk texts for {_and(clients)} again. Reply STOP to stop them."
    )


def _and(names: list[str]) -> str:
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)


def unacknowledged_sms(client: str, ref: str) -> str:
    return f"{client} #{ref}: nobody has acknowledged this message. Please reply 1 to take it."


def may_text_caller(number: str) -> bool:
    """Never text a withheld number; the caller must have a mobile (checked by the caller)."""
    return number.strip().lower() not in WITHHELD
