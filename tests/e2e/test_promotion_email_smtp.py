"""Promotion emails end to end: the services, the Celery task (eager) and Django's SMTP backend
against a real SMTP server (aiosmtpd) that the test starts on 127.0.0.1. Checks what the
server received (envelope recipients, subject, the text and HTML parts, the link) and that
the link opens the request; then the retries when the server is down or refuses an address
for a while, and that a retry does not mail anyone twice (issue 4, item 6)."""

from __future__ import annotations

import email
import re
import socket
import threading
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from urllib.parse import urlsplit

import pytest
from aiosmtpd.controller import Controller
from celery.exceptions import Retry
from django.contrib.auth.models import Group

from accounts.models import GroupNesting
from core.actor import Actor
from registry import services
from registry.notifications import DeliveryInterrupted
from registry.tasks import EMAIL_RETRY_BACKOFF, send_promotion_email
from tests.registry.conftest import logged_model, ready_version  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

M = "main.ml.wine"
BASE = "http://steward.test"
FROM = "steward@example.test"
LINK = re.compile(r"https?://[^\s\"<>]+/console/promotion-requests/[^\s\"<>]+")
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@dataclass
class Received:
    """One message as the server took it: the envelope and the parsed content."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    def part(self, mimetype: str) -> str:
        body = self.message.get_body(preferencelist=(mimetype.split("/")[1],))
        assert body is not None and body.get_content_type() == mimetype, mimetype
        return body.get_content()


@dataclass
class Inbox:
    """aiosmtpd handler: keeps every message; `refuse` maps an address to the reply its RCPT
    gets instead of 250 (a 4xx is "try later", a 5xx is "never")."""

    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.refuse.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content, policy=default_policy)
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if address in r.rcpt_tos]


def console_link(mail: Received) -> str:
    """The one console link of a message; the HTML part links to the same address."""
    (link,) = set(LINK.findall(mail.part("text/plain")))
    assert f'href="{link}"' in mail.part("text/html")
    return link


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MailServer:
    """A real SMTP server on a free port of 127.0.0.1; Django's SMTP backend points at it
    whether it is running or not (not running: connections are refused)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.inbox = Inbox()
        self.controller: Controller | None = None

    def start(self) -> None:
        # server_hostname: no FQDN lookup (there is no DNS here).
        self.controller = Controller(
            self.inbox, hostname="127.0.0.1", port=self.port, server_hostname="smtp.test"
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def mail_server(settings):
    server = MailServer()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 10
    settings.DEFAULT_FROM_EMAIL = f"Steward <{FROM}>"
    settings.STEWARD_BASE_URL = BASE
    yield server
    server.stop()


def act(user) -> Actor:
    return Actor.system(user)


@pytest.fixture
def team(tree, make_user, grant):
    """dana requests; ann approves through `reviewers`, bob through `oncall`, nested in it;
    one approval is enough."""
    tree(M)
    users = {
        "dana": make_user("dana", email="dana@example.test"),
        "owen": make_user("owen"),
        "ann": make_user("ann", groups=("reviewers",), email="ann@example.test"),
        "bob": make_user("bob", groups=("oncall",), email="bob@example.test"),
    }
    GroupNesting.objects.create(
        parent=Group.objects.get(name="reviewers"), child=Group.objects.get(name="oncall")
    )
    for name in users:
        grant("catalog", "main", name, "USE CATALOG", "USE SCHEMA")
    grant("registered_model", M, "dana", "MODIFY", "MANAGE", "EXECUTE")
    grant("catalog", "main", "owen", "MANAGE")
    return users


@pytest.fixture
def promotable(team, ready_version):  # noqa: F811 (the imported fixture)
    """Versions 1 (champion) and 2, then a policy protecting champion."""
    ready_version(team["dana"], M)
    ready_version(team["dana"], M)
    services.alias_set(actor=act(team["dana"]), full_name=M, alias="champion", version=1)
    services.alias_policy_create(
        actor=act(team["owen"]),
        securable_type="catalog",
        full_name="main",
        alias_patterns=["champion"],
        approvers=["reviewers"],
        required_approvals=1,
    )
    return team


def request_champion(team) -> str:
    request = services.promotion_request_create(
        actor=act(team["dana"]),
        full_name=M,
        alias="champion",
        version=2,
        justification="better <b>on</b> 2024 data",
    )
    return str(request.id)


def test_request_and_decision_emails_arrive_over_smtp_and_link_to_the_request(
    promotable, mail_server
):
    team = promotable
    mail_server.start()
    request_id = request_champion(team)  # commits; the email task runs on commit

    received = mail_server.inbox.received
    assert sorted(r.rcpt_tos[0] for r in received) == ["ann@example.test", "bob@example.test"]
    assert all(len(r.rcpt_tos) == 1 and r.mail_from == FROM for r in received)
    assert not mail_server.inbox.to("dana@example.test")
    (mail,) = mail_server.inbox.to("bob@example.test")  # through the nested group
    message = mail.message
    # Django folds the encoded subject onto a continuation line; the parser keeps its space.
    subject = message["Subject"].strip()
    assert subject == "[Steward] Approval needed: main.ml.wine@champion → version 2"
    assert message["To"] == "bob@example.test" and message["From"] == f"Steward <{FROM}>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Steward-Promotion-Request"] == request_id
    assert message.get_content_type() == "multipart/alternative"
    text, html = mail.part("text/plain"), mail.part("text/html")
    assert "version 1 → version 2" in text and "Approve or reject it here:" in text
    assert "better <b>on</b> 2024 data" in text
    assert "better &lt;b&gt;on&lt;/b&gt; 2024 data" in html and "<b>on</b>" not in html

    link = console_link(mail)
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}" == BASE
    assert re.fullmatch(rf"/console/promotion-requests/({UUID})", parts.path)
    assert parts.path.rsplit("/", 1)[1] == request_id  # the page itself: the test below

    services.promotion_request_approve(actor=act(team["ann"]), request_id=request_id)
    to_dana = mail_server.inbox.to("dana@example.test")
    assert [r.message["Subject"].strip() for r in to_dana] == [
        "[Steward] Approved by ann (1 of 1): main.ml.wine@champion → version 2",
        "[Steward] Applied: main.ml.wine@champion → version 2",
    ]
    applied = to_dana[1]
    assert "now points at version 2" in applied.part("text/plain")
    assert f"/console/promotion-requests/{request_id}" in applied.part("text/html")
    assert len(mail_server.inbox.received) == 4  # nobody twice


def test_the_emailed_link_opens_the_request_for_the_approver(promotable, mail_server, client):
    mail_server.start()
    request_id = request_champion(promotable)
    (mail,) = mail_server.inbox.to("bob@example.test")
    path = urlsplit(console_link(mail)).path
    anonymous = client.get(path)  # signed out: to the login, and back here after it
    assert anonymous.status_code == 302 and "next=" in anonymous["Location"]
    client.force_login(promotable["bob"])
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    content = page.content.decode()
    assert request_id in content and "main.ml.wine" in content
    assert 'value="approve"' in content and 'value="reject"' in content


def test_server_down_retries_with_backoff_then_delivers(promotable, mail_server, settings):
    team = promotable
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    request_id = request_champion(team)  # its emails go to the locmem outbox
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"

    # Nothing listens on the port: the connection is refused. Eagerly run with
    # CELERY_TASK_EAGER_PROPAGATES, the task's retry surfaces as celery's Retry, holding the
    # cause and the signature a worker would schedule after the backoff.
    with pytest.raises(Retry) as caught:
        send_promotion_email.delay(request_id, "created", {})
    retry = caught.value
    assert isinstance(retry.exc, DeliveryInterrupted)
    assert isinstance(retry.exc.cause, ConnectionRefusedError)
    assert retry.exc.settled == []
    assert 0 <= retry.when <= EMAIL_RETRY_BACKOFF  # first backoff, full jitter
    assert retry.sig.kwargs == {"settled": []}
    assert list(retry.sig.args) == [request_id, "created", {}]

    # Run directly (no task machinery), the error itself surfaces.
    with pytest.raises(DeliveryInterrupted):
        send_promotion_email(request_id, "created", {})

    mail_server.start()
    assert retry.sig.apply().get() == 2
    assert sorted(r.rcpt_tos[0] for r in mail_server.inbox.received) == [
        "ann@example.test",
        "bob@example.test",
    ]


def test_retry_after_a_temporary_refusal_mails_only_the_rest(promotable, mail_server, settings):
    team = promotable
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    request_id = request_champion(team)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    mail_server.start()
    mail_server.inbox.refuse["bob@example.test"] = "451 4.3.0 Mailbox busy, try again later"

    with pytest.raises(Retry) as caught:
        send_promotion_email.delay(request_id, "created", {})
    retry = caught.value
    assert retry.sig.kwargs == {"settled": ["ann@example.test"]}  # ann got hers
    assert [r.rcpt_tos for r in mail_server.inbox.received] == [["ann@example.test"]]

    mail_server.inbox.refuse.clear()
    assert retry.sig.apply().get() == 1
    assert len(mail_server.inbox.to("ann@example.test")) == 1  # not twice
    assert len(mail_server.inbox.to("bob@example.test")) == 1


def test_permanent_refusal_is_logged_not_retried(promotable, mail_server, settings, caplog):
    team = promotable
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    request_id = request_champion(team)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    mail_server.start()
    mail_server.inbox.refuse["ann@example.test"] = "550 5.1.1 No such user"

    assert send_promotion_email.delay(request_id, "created", {}).get() == 1
    assert [r.rcpt_tos for r in mail_server.inbox.received] == [["bob@example.test"]]
    assert "ann@example.test refused" in caplog.text


def test_missing_request_sends_nothing_even_with_the_server_down(mail_server):
    assert send_promotion_email.delay(str(uuid.uuid4()), "created", {}).get() == 0


def test_a_mail_outage_does_not_fail_a_committed_service_call(promotable, mail_server):
    from registry.models import PromotionRequest

    try:
        request_champion(promotable)  # the mail server is not running
    finally:
        # Committed whatever the email did.
        assert PromotionRequest.objects.filter(state=PromotionRequest.State.PENDING).count() == 1
