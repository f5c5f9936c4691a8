"""The `nightdesk` command: serve, manage flows and the database, try calls, read messages."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import shutil
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

import httpx
import typer
import uvicorn
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.cli import keys_app, users_app
from app.acks.service import acknowledge
from app.calls.queries import message_story
from app.clients.flows import FlowStore, sync_flows
from app.clients.models import Client, PhoneNumber
from app.console.sandbox import answer_pa_phones
from app.db import (
    explain_database_error,
    make_database,
    sessions_for_command,
    transaction,
    upgrade_database,
)
from app.dispatch.dispatcher import listen_for_work, make_dispatcher
from app.flows.check import most_menus_before_message
from app.flows.jsonschema import flow_json_schema
from app.flows.loader import LoadedFlow, load_flows
from app.flows.pins import BadPinError, hash_pin
from app.flows.rota import next_handoffs, who_is_on_call
from app.messages.queries import MessageNotFoundError, list_messages
from app.messages.reads import Reader, log_reads
from app.observability import configure_logging
from app.records.cli import messages_verify, purge
from app.records.dispatcher import add_retention
from app.settings import DEFAULT_TWILIO_API_BASE, Settings, get_settings
from app.summaries.cli import summaries_app
from app.summaries.dispatcher import add_summaries
from app.telephony.sandbox.caller import Conversation, Press, SimulatedCaller
from app.telephony.sandbox.caller import Say as Speak
from app.telephony.sandbox.fake_resources import CallRecord
from app.telephony.sandbox.services import start_sandboxes
from app.telephony.sandbox.switchboard import HttpSwitchboard
from app.timeutil import utcnow
from app.webhooks.cli import webhooks_app

if TYPE_CHECKING:
    from fastapi import FastAPI

app = typer.Typer(
    help="Nightdesk: after-hours call answering. Add --debug to any command for tracebacks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: no <bool> placeholder after flags that take no value
)
db_app = typer.Typer(help="The database.", no_args_is_help=True)
flows_app = typer.Typer(help="Voice flow files.", no_args_is_help=True)
messages_app = typer.Typer(help="Messages taken from callers.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(flows_app, name="flows")
app.add_typer(messages_app, name="messages")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="api-keys")
app.add_typer(summaries_app, name="summaries")
app.add_typer(webhooks_app, name="webhooks")
app.command("purge")(purge)


def _sessions(settings: Settings) -> sessionmaker[Session]:
    return sessions_for_command(settings.database_url)


def _prepare_database(settings: Settings) -> list[LoadedFlow]:
    """Migrate the database and load the flow files, skipping (and saying) any that are broken."""
    upgrade_database(settings.database_url)
    loaded, problems = load_flows([settings.flows_dir])
    for problem in problems:
        typer.echo(f"skipped: {problem}", err=True)
    with transaction(_sessions(settings)) as session:
        sync_flows(session, loaded)
    return loaded


def _parse_at(value: str | None, zone: ZoneInfo) -> dt.datetime:
    """An ISO time; without an offset it is the client's own local time, in `zone`
    ("2026-12-25T02:00" is 2 a.m. on Christmas Day where the client is)."""
    if value is None:
        return utcnow()
    try:
        at = dt.datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a time: write it like 2026-12-25T02:00 (the client's local time)"
            " or 2026-12-25T02:00+00:00",
            param_hint="--at",
        ) from None
    return (at if at.tzinfo else at.replace(tzinfo=zone)).astimezone(dt.UTC)


# --- running --------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
    fd: Annotated[
        int | None,
        typer.Option(help="Serve on this inherited listening socket (socket activation)"),
    ] = None,
) -> None:
    """Run the web service (uvicorn, uvloop and httptools).

    With --fd, a supervisor (systemd socket activation) holds the listening socket, so while
    the service restarts Twilio's requests wait in the socket's queue instead of being refused.
    """
    _serve("app.main:create_app", host=host, port=port, fd=fd, workers=workers)


def _serve(
    application: str | FastAPI, *, host: str, port: int, fd: int | None = None, workers: int = 1
) -> None:
    """uvicorn as `serve` runs it: `application` is the app factory's import path, or (the
    demo) an app built in this process, with this process's sandbox."""
    uvicorn.run(
        application,
        factory=isinstance(application, str),
        host=host,
        port=port,
        fd=fd,
        workers=workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        # Behind a proxy, X-Forwarded-* give the URL Twilio called; with NIGHTDESK_PUBLIC_URL
        # set (as outside development it must be) nothing reads them, and uvicorn's middleware
        # for them cost about 2% of a webhook's CPU (`python -m bench.webhooks`).
        proxy_headers=not get_settings().public_url,
    )


@app.command()
def worker() -> None:
    """Run the dispatcher on its own, beside `serve` processes started with
    NIGHTDESK_RUN_DISPATCHER=false (at scale: any number of workers on one PostgreSQL)."""
    settings = get_settings()
    configure_logging(settings.log_level)
    dispatcher = add_retention(
        add_summaries(
            make_dispatcher(settings, make_database(settings.database_url), FlowStore(), utcnow)
        ),
        settings,
    )
    stop = threading.Event()

    def stop_on_signal(_signum: int, _frame: object) -> None:
        stop.set()
        dispatcher.waker.wake()

    signal.signal(signal.SIGTERM, stop_on_signal)
    signal.signal(signal.SIGINT, stop_on_signal)
    if settings.database_url.startswith("postgresql"):
        threading.Thread(
            target=listen_for_work,
            args=(settings.database_url, dispatcher.waker, stop),
            name="dispatch-listen",
            daemon=True,
        ).start()
    dispatcher.run_forever(stop)
    dispatcher.sending.wait_until(in_flight=0, timeout=30)  # record the sends under way


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
) -> None:
    """Set up the embedded database with the demo clients, say what to try, and serve.

    Unless NIGHTDESK_TWILIO_API_BASE is set, texts and calls go to the sandbox (a local fake of
    Twilio's API) and are printed here instead of reaching anyone's phone.
    """
    if "NIGHTDESK_PUBLIC_URL" not in os.environ:
        os.environ["NIGHTDESK_PUBLIC_URL"] = f"http://{host}:{port}"
    get_settings.cache_clear()
    sandboxes = start_sandboxes(get_settings(), typer.echo, twilio_port=port + 1)
    # The server builds its settings from the environment: point it at these sandboxes.
    os.environ["NIGHTDESK_TWILIO_API_BASE"] = sandboxes.settings.twilio_api_base
    os.environ["NIGHTDESK_SMTP_URL"] = sandboxes.settings.smtp_url
    if sandboxes.twilio is not None:  # the sandbox answers PAs' phones and presses 1
        answer_pa_phones(sandboxes.twilio, f"http://{host}:{port}", on_done=_print_pa_phone)
    get_settings.cache_clear()
    settings = get_settings()
    loaded = _prepare_database(settings)
    typer.echo(f"Nightdesk is starting on http://{host}:{port} with {settings.database_url}")
    typer.echo("Demo clients:")
    for item in loaded:
        typer.echo(f"  {item.flow.client:<20} {item.flow.name} ({', '.join(item.flow.numbers)})")
    command = _this_command()
    typer.echo(
        "\nTexts, calls and email go to the sandbox and are printed here as [sandbox] lines;\n"
        f"http://{host}:{port}/sandbox shows them all.\n"
        "Try a call without a phone, in another terminal:\n"
        f"  {command} call acme-plumbing --url http://{host}:{port} --press 2 "
        "--say 'Sam Taylor' --say '07911 123456' --press 1 --say 'The boiler is leaking'\n"
        f"  {command} call riverside-medical --at 2026-12-25T02:00 --press 2\n"
        f"  {command} messages list\n"
        "\nTake a caller in the PA console (the sandbox answers the PA's phone and presses 1):\n"
        f"  {command} users add pa@example.test --role pa --phone +15005550006\n"
        "  (open the link it prints, then press Set me available)\n"
        f"  NIGHTDESK_TWILIO_API_BASE={os.environ['NIGHTDESK_TWILIO_API_BASE']} {command} "
        f"call harbour-law --url http://{host}:{port} --press 0\n"
    )
    from app.main import create_app

    # The app gets this sandbox, so its /sandbox page shows what the sandbox sent.
    _serve(create_app(settings, sandboxes=sandboxes), host=host, port=port)


def _this_command() -> str:
    """How to run `nightdesk` from the user's shell: as this process was run, through the
    environment's own script (`uv` itself may not be on their PATH)."""
    script = Path(sys.argv[0]).resolve()
    on_path = shutil.which("nightdesk")
    if on_path and Path(on_path).resolve() == script:
        return "nightdesk"
    if script.name != "nightdesk" or not script.is_file():
        return f"{sys.executable} -m app.cli"
    try:
        return f"./{script.relative_to(Path.cwd())}"
    except ValueError:
        return str(script)


def _print_pa_phone(call: CallRecord, conversation: Conversation) -> None:
    typer.echo(f"[sandbox] the PA's phone ({call.to}):\n{conversation.transcript()}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration to NIGHTDESK_DATABASE_URL."""
    upgrade_database(get_settings().database_url)
    typer.echo("database is up to date")


# --- flows ----------------------------------------------------------------------------------


@flows_app.command("check")
def flows_check(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Files or folders (default: NIGHTDESK_FLOWS_DIR, voice_flows/)"),
    ] = None,
) -> None:
    """Check flow files; print every problem as file:line and exit 1 if there is any."""
    loaded, problems = load_flows(paths or [get_settings().flows_dir])
    for problem in problems:
        typer.echo(str(problem), err=True)
    for item in loaded:
        menus = most_menus_before_message(item.flow)
        typer.echo(
            f"ok  {item.path}  {item.flow.client}: {len(item.flow.steps)} steps, "
            f"at most {menus} menu{'s' if menus != 1 else ''} before a message can be left"
        )
    if problems:
        typer.echo(f"{len(problems)} problem(s)", err=True)
        raise typer.Exit(1)


@flows_app.command("sync")
def flows_sync(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Files or folders (default: NIGHTDESK_FLOWS_DIR, voice_flows/)"),
    ] = None,
) -> None:
    """Load flow files into the database. A broken file is refused whole; its old version stays."""
    settings = get_settings()
    loaded, problems = load_flows(paths or [settings.flows_dir])
    with transaction(_sessions(settings)) as session:
        report = sync_flows(session, loaded)
    for label, names in (("new", report.created), ("updated", report.updated)):
        for name in names:
            typer.echo(f"{label:<9} {name}")
    for name in report.unchanged:
        typer.echo(f"unchanged {name}")
    for problem in problems:
        typer.echo(f"refused   {problem}", err=True)
    if problems:
        raise typer.Exit(1)


@flows_app.command("schema")
def flows_schema(
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout")] = None,
) -> None:
    """The JSON Schema of a flow file, for editors."""
    text = json.dumps(flow_json_schema(), indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)


@flows_app.command("pin")
def flows_pin() -> None:
    """Read a PIN (4 to 8 digits) on stdin; print the line a flow file's `pin:` takes."""
    pin = sys.stdin.readline().strip()
    try:
        typer.echo(hash_pin(pin))
    except BadPinError as exc:
        typer.echo(f"nightdesk: {exc}", err=True)
        raise typer.Exit(2) from None


# --- trying calls -----------------------------------------------------------------------------


def _script_from_argv(argv: list[str]) -> list[Press | Speak]:
    """--press and --say in the order they were typed (click keeps each option's values apart)."""
    script: list[Press | Speak] = []
    pending: str | None = None
    for arg in argv:
        if pending is not None:
            script.append(Press(arg) if pending == "--press" else Speak(arg))
            pending = None
        elif arg in ("--press", "--say"):
            pending = arg
        elif arg.startswith(("--press=", "--say=")):
            flag, value = arg.split("=", 1)
            script.append(Press(value) if flag == "--press" else Speak(value))
    return script


@app.command()
def call(
    client_or_number: Annotated[
        str, typer.Argument(metavar="CLIENT_OR_NUMBER", help="A client id or one of its numbers")
    ],
    press: Annotated[
        list[str] | None,
        typer.Option("--press", metavar="KEYS", help="Keys to press (again for the next turn)"),
    ] = None,
    say: Annotated[
        list[str] | None,
        typer.Option("--say", metavar="WORDS", help="Words to say (again for the next turn)"),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            metavar="TIME",
            help="Pretend it is this ISO time; without an offset, the client's local time",
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(metavar="URL", help="A running Nightdesk instead of in-process"),
    ] = None,
    caller: Annotated[
        str, typer.Option("--from", metavar="NUMBER", help="The caller's number")
    ] = "+447911123456",
    transfers: Annotated[
        str, typer.Option(metavar="HOW", help="answer | no-answer | busy")
    ] = "no-answer",
) -> None:
    """Play a caller against a flow with signed webhooks and print the conversation."""
    settings = get_settings()
    script = _script_from_argv(sys.argv)
    number, zone = _number_for(settings, client_or_number)
    if url is None:
        start = _parse_at(at, zone)
        if at is not None:
            typer.echo(f"(the call happens at {start.astimezone(zone):%a %d %b %Y %H:%M %Z})")
        conversation, sent = _call_in_process(settings, number, script, start, caller, transfers)
        typer.echo(conversation.transcript())
        for line in sorted(sent):  # sent concurrently: in a stable order for the reader
            typer.echo(line)
        return
    else:
        if at is not None:
            raise typer.BadParameter(
                "only works in-process: a running server keeps its own clock", param_hint="--at"
            )
        try:
            with httpx.Client(base_url=url, timeout=20) as http:
                http.get("/healthz")  # a server that isn't there is an error, not a silent call
                conversation = SimulatedCaller(
                    http, public_url=settings.public_url or url,
                    auth_token=settings.twilio_auth_token,
                    account_sid=settings.twilio_account_sid, from_number=caller,
                    to_number=number, script=script, transfers=transfers,  # type: ignore[arg-type]
                    switchboard=_sandbox_switchboard(settings),
                ).run()  # fmt: skip
        except httpx.TransportError as exc:
            typer.echo(
                f"nightdesk call: could not reach {url} ({type(exc).__name__}): is `nightdesk "
                "serve` or `nightdesk demo` running there?",
                err=True,
            )
            raise typer.Exit(1) from None
    typer.echo(conversation.transcript())


def _sandbox_switchboard(settings: Settings) -> HttpSwitchboard | None:
    """Against `nightdesk demo`'s sandbox, the caller waits in its queues in real time, until a
    PA takes them from the console (or the flow's hold limit passes)."""
    if settings.twilio_api_base.rstrip("/") == DEFAULT_TWILIO_API_BASE:
        return None
    return HttpSwitchboard(
        settings.twilio_api_base, settings.twilio_account_sid, settings.twilio_auth_token
    )


def _number_for(settings: Settings, client_or_number: str) -> tuple[str, ZoneInfo]:
    """The number to ring, and the client's time zone (for --at), from the flow files."""
    loaded, _ = load_flows([settings.flows_dir])
    for item in loaded:
        if client_or_number in (item.flow.client, *item.flow.numbers):
            number = client_or_number if client_or_number.startswith("+") else None
            return number or item.flow.numbers[0], item.flow.zone
    with transaction(_sessions(settings)) as session:  # loaded before its file broke, perhaps
        found = session.execute(
            select(PhoneNumber.number, Client.timezone)
            .join(Client)
            .where((Client.slug == client_or_number) | (PhoneNumber.number == client_or_number))
        ).first()
    if found is not None:
        return found.number, ZoneInfo(found.timezone)
    if client_or_number.startswith("+"):
        return client_or_number, ZoneInfo("UTC")
    known = ", ".join(item.flow.client for item in loaded) or "none"
    raise typer.BadParameter(
        f"no client {client_or_number!r} in {settings.flows_dir}/ (clients: {known})",
        param_hint="CLIENT_OR_NUMBER",
    )


def _call_in_process(
    settings: Settings,
    number: str,
    script: list[Press | Speak],
    start: dt.datetime,
    caller: str,
    transfers: str,
) -> tuple[Conversation, list[str]]:
    """The service in this process on its own database, with the sandbox: the conversation, and
    what the first notifications sent once the call was over."""
    from app.main import create_app

    _prepare_database(settings)
    began = utcnow()
    quiet = settings.model_copy(update={"log_level": "WARNING", "run_dispatcher": False})
    # No port for the fake Twilio's status callbacks to reach: they are left out.
    sent: list[str] = []
    sandboxes = start_sandboxes(quiet, sent.append, deliver=lambda _url, _form, _headers: None)
    application = create_app(quiet, clock=lambda: start + (utcnow() - began), sandboxes=sandboxes)
    base = "http://nightdesk.local"
    with warnings.catch_warnings():  # Starlette nudges TestClient users towards its httpx fork
        warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient

        with TestClient(application, base_url=base) as http:
            conversation = SimulatedCaller(
                http, public_url=settings.public_url or base,
                auth_token=settings.twilio_auth_token, account_sid=settings.twilio_account_sid,
                from_number=caller, to_number=number, script=script,
                transfers=transfers,  # type: ignore[arg-type]
            ).run()  # fmt: skip
            # The app's own dispatcher only replays its spool when RUN_DISPATCHER is off (so
            # that no loop sends in the background): one that notifies sends the first
            # notifications now, through the app's sandbox settings and clock.
            state = application.state
            make_dispatcher(state.settings, state.database, state.flows, state.clock).run_once()
    return conversation, sent


@app.command()
def oncall(
    client: Annotated[str, typer.Argument(metavar="CLIENT", help="A client id")],
    at: Annotated[
        str | None,
        typer.Option(metavar="TIME", help="ISO time; without an offset, the client's local time"),
    ] = None,
) -> None:
    """Who is on call for a client now (or at --at), and the next hand-offs."""
    loaded, _ = load_flows([get_settings().flows_dir])
    flow = next((item.flow for item in loaded if item.flow.client == client), None)
    if flow is None:
        typer.echo(f"no valid flow for {client!r}", err=True)
        raise typer.Exit(2)
    if flow.rotation is None:
        typer.echo(f"{flow.name} has no on-call rotation")
        return
    instant = _parse_at(at, flow.zone)
    person = flow.contact(who_is_on_call(flow.rotation, flow.zone, instant))
    local = instant.astimezone(flow.zone)
    typer.echo(f"{flow.name}, {local:%a %d %b %Y %H:%M %Z}: {person.name if person else '?'}")
    for handoff in next_handoffs(flow.rotation, flow.zone, instant):
        who = flow.contact(handoff.contact)
        when = handoff.at.astimezone(flow.zone)
        typer.echo(f"  then {who.name if who else handoff.contact} from {when:%a %d %b %H:%M %Z}")


# --- messages -------------------------------------------------------------------------------


@messages_app.command("list")
def messages_list(
    client: Annotated[str | None, typer.Option(help="Only this client")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array")] = False,
) -> None:
    """Messages, newest first."""
    with transaction(_sessions(get_settings())) as session:
        rows = list_messages(session, client)
        # Each message shown is a read: logged for clients in privacy mode (the read log).
        log_reads(session, [row.id for row in rows], _operator(), "cli", utcnow())
    if as_json:
        typer.echo(json.dumps([row.model_dump(mode="json") for row in rows], indent=2))
        return
    if not rows:
        typer.echo("no messages")
    for row in rows:
        gist = row.transcription or "; ".join(f"{k}: {v}" for k, v in row.answers.items())
        typer.echo(
            f"#{row.id:<5} {row.created_at:%Y-%m-%d %H:%M}  {row.client or '(no client)':<18} "
            f"{row.urgency:<9} {row.status:<12} {row.caller}  {gist[:60]}"
        )


@messages_app.command("show")
def messages_show(message_id: int) -> None:
    """One message with its timeline."""
    with transaction(_sessions(get_settings())) as session:
        try:
            detail = message_story(session, message_id)
        except MessageNotFoundError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
        log_reads(session, [message_id], _operator(), "cli", utcnow())  # a read, as above
    typer.echo(f"Message #{detail.id} for {detail.client or '(no client)'}, from {detail.caller}")
    typer.echo(f"  {detail.urgency}, {detail.outcome}, {detail.status}")
    for name, value in detail.answers.items():
        typer.echo(f"  {name}: {value}")
    if detail.recording_url:
        typer.echo(f"  recording: {detail.recording_url} ({detail.recording_seconds} s)")
    if detail.transcription:
        typer.echo(f"  transcription: {detail.transcription}")
    typer.echo("Timeline:")
    for entry in detail.timeline:
        fields = ", ".join(f"{k}={v}" for k, v in entry.detail.items() if v is not None)
        typer.echo(f"  {entry.at:%H:%M:%S} {entry.source:<7} {entry.kind:<16} {fields}")


def _operator() -> Reader:
    """The read log's name for whoever runs the command: their login name on this machine."""
    return Reader(f"operator {getpass.getuser()}")


@messages_app.command("ack")
def messages_ack(
    message_id: int,
    by: Annotated[str, typer.Option(help="Who is acknowledging")] = "operator",
) -> None:
    """Acknowledge a message: stops its escalation."""
    with transaction(_sessions(get_settings())) as session:
        try:
            done = acknowledge(
                session, FlowStore(), message_id, by=by, via="operator", now=utcnow()
            )
        except MessageNotFoundError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
    if done.first:
        typer.echo(f"message {message_id} (#{done.ref}) acknowledged by {done.by}")
    else:
        typer.echo(f"message {message_id} (#{done.ref}) was already acknowledged by {done.by}")


messages_app.command("verify")(messages_verify)  # app/records: after the others in the help


def main() -> None:
    """`nightdesk`: an error is one line saying what to do; `--debug` shows its traceback."""
    debug = "--debug" in sys.argv
    if debug:
        sys.argv.remove("--debug")
    try:
        app()
    except Exception as exc:
        if debug:
            raise
        explained = explain_database_error(exc) if isinstance(exc, SQLAlchemyError) else None
        typer.echo(f"nightdesk: {explained or exc} (--debug shows the details)", err=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
