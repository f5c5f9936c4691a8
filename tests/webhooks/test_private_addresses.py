"""A webhook URL may not reach into a private network: refused at registration, and checked
again before every delivery, which connects to the address that was checked. A name that
resolved to a public address when it was added and to a private one later (DNS rebinding) gets
nothing. The resolver is injected; the receiver is httpx's MockTransport, which records what
would have gone out and where."""

from __future__ import annotations

from ipaddress import ip_address

import httpx
import pytest
from sqlalchemy import select

from app.clients.flows import FlowStore
from app.db import transaction
from app.dispatch import outbox
from app.webhooks.destinations import RefusedUrlError, destination
from app.webhooks.failures import IPAddress
from app.webhooks.models import WebhookDelivery
from app.webhooks.sending import SendWebhooks
from app.webhooks.service import add_endpoint
from tests.webhooks.conftest import Hooks

PUBLIC = ip_address("93.184.216.34")


class Dns:
    """A resolver the test re-points, as an attacker re-points their name."""

    def __init__(self) -> None:
        self.answer: list[IPAddress] = [PUBLIC]

    def __call__(self, host: str, port: int) -> list[IPAddress]:
        return list(self.answer)


def test_a_name_resolving_to_a_private_address_is_refused_at_registration() -> None:
    dns = Dns()
    assert destination("https://crm.acme.example/x", local_ok=False, resolver=dns).address == PUBLIC
    for private in ("10.0.0.5", "169.254.169.254", "fd00::1", "::ffff:192.168.0.1", "127.0.0.1"):
        dns.answer = [PUBLIC, ip_address(private)]
        with pytest.raises(RefusedUrlError):
            destination("https://crm.acme.example/x", local_ok=False, resolver=dns)


def test_a_request_goes_to_the_checked_address_and_a_rebound_name_gets_nothing(
    hooks: Hooks,
) -> None:
    dns = Dns()
    seen: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    http = httpx.Client(transport=httpx.MockTransport(receiver), follow_redirects=False)
    module = SendWebhooks(
        hooks.dispatcher.database, FlowStore(), http, outbox.queue_notice, False, dns
    )
    with transaction(hooks.sessions) as session:
        checked = destination("https://crm.acme.example/hooks", local_ok=False, resolver=dns)
        add_endpoint(session, "acme-plumbing", checked, [], hooks.clock())

    hooks.message()
    module.run(hooks.clock())
    (request,) = seen
    assert str(request.url) == "https://93.184.216.34/hooks"  # pinned to what was checked
    assert request.headers["host"] == "crm.acme.example"
    assert request.extensions["sni_hostname"] == "crm.acme.example"  # TLS checks the name

    dns.answer = [ip_address("10.0.0.5")]  # the name now points inside
    hooks.message()
    module.run(hooks.clock())
    assert len(seen) == 1, "nothing went to the private address"
    with hooks.sessions() as session:
        refused = session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()[-1]
    assert refused.error is not None
    assert refused.error.startswith("refused: crm.acme.example resolves to 10.0.0.5")
    assert refused.status == "pending", "retried on the schedule, like any refusal"
