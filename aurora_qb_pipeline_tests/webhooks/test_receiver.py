"""The receiver over loopback: authentication, malformed deliveries, duplicates, unknown events,
health, and the `aurora-qb webhooks serve` command as a real process."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from aurora_qb_pipeline.settings import Settings, webhook_secret_from_env
from aurora_qb_pipeline.webhooks.events import SECRET_HEADER, parse_delivery
from aurora_qb_pipeline.webhooks.inbox import Inbox
from aurora_qb_pipeline.webhooks.receiver import ReceiverThread, create_receiver_app

from .conftest import SECRET

STATUS = "/aurora/events/project_status_changed"
VALID = "project_id=6f1c2a9e-0b7d-4c1e-9f0a-1b2c3d4e5f60&status=Design%20Ready"


@pytest.fixture
def inbox(tmp_path):
    box = Inbox(f"sqlite:///{tmp_path / 'inbox.sqlite'}")
    yield box
    box.close()


def get(receiver, path, query="", **kwargs):
    return requests.get(f"{receiver.url}{path}" + (f"?{query}" if query else ""), timeout=5, **kwargs)


def test_the_secret_is_required_and_a_wrong_one_stores_nothing(receiver, inbox):
    wrong = "x" * len(SECRET)
    attempts = [
        get(receiver, STATUS, VALID),  # no credential at all
        get(receiver, STATUS, VALID, headers={SECRET_HEADER: wrong}),
        get(receiver, STATUS, f"{VALID}&token={wrong}"),
        get(receiver, STATUS, VALID, headers={"Authorization": f"Bearer {SECRET[:-1]}"}),
        get(receiver, STATUS, VALID, auth=("aurora", wrong)),
        get(receiver, STATUS, "malformed=%ff", headers={SECRET_HEADER: wrong}),  # 401 comes before 400
    ]
    assert [r.status_code for r in attempts] == [401] * len(attempts)
    assert all("secret" in r.json()["error"] for r in attempts)
    assert inbox.summary()["events"] == 0

    accepted = [
        get(receiver, STATUS, VALID, headers={SECRET_HEADER: SECRET}),
        get(receiver, STATUS, f"{VALID}&token={SECRET}"),
        get(receiver, STATUS, VALID, headers={"Authorization": f"Bearer {SECRET}"}),
        get(receiver, STATUS, VALID, auth=("aurora", SECRET)),
    ]
    assert [r.status_code for r in accepted] == [200] * 4
    assert [r.json()["status"] for r in accepted] == ["stored", "duplicate", "duplicate", "duplicate"]
    (row,) = inbox.read(0)
    assert row.deliveries == 4 and row.params == {"project_id": "6f1c2a9e-0b7d-4c1e-9f0a-1b2c3d4e5f60",
                                                  "status": "Design Ready"}
    assert SECRET.encode() not in b"".join(p.read_bytes() for p in _files(inbox))


def _files(inbox):
    from pathlib import Path

    database = Path(inbox.engine.url.database)
    return [p for p in database.parent.iterdir() if p.name.startswith(database.name)]


@pytest.mark.parametrize("query, says", [
    ("status=Design%20Ready", "needs the query parameter 'project_id'"),
    ("project_id=&status=x", "needs the query parameter 'project_id'"),
    ("project_id=a&project_id=b", "given twice with different values"),
    ("project_id=abc%20def", "is not an Aurora id"),
    ("project_id=abc&status=%ff%fe", "not valid UTF-8"),
    ("project_id=abc&status=" + "s" * 300, "at most 255 characters"),
    ("project_id=abc&" + "&".join(f"p{i}=1" for i in range(40)), "more than 32 query parameters"),
    ("project_id=abc&note=" + "n" * 5000, "longer than 4096 bytes"),
])
def test_malformed_deliveries_get_400_with_a_clear_message(receiver, inbox, query, says):
    response = get(receiver, STATUS, query, headers={SECRET_HEADER: SECRET})
    assert response.status_code == 400
    assert says in response.json()["error"]
    assert inbox.summary()["events"] == 0


def test_bad_event_names_and_raw_bytes_are_refused(receiver, inbox):
    headers = {SECRET_HEADER: SECRET}
    assert get(receiver, "/aurora/events/Project-Status", VALID, headers=headers).status_code == 400
    request = (f"GET {STATUS}?{VALID}&note=caf\u00e9 HTTP/1.1\r\nHost: x\r\n{SECRET_HEADER}: {SECRET}\r\n"
               "Connection: close\r\n\r\n").encode()  # the raw bytes of a query that is not percent-encoded
    with socket.create_connection((receiver.host, receiver.port), timeout=5) as conn:
        conn.sendall(request)
        answer = conn.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400")
    assert inbox.summary()["events"] == 0


def test_unknown_events_legacy_names_and_path_ids_are_stored(receiver, inbox):
    headers = {SECRET_HEADER: SECRET}
    unknown = get(receiver, "/aurora/events/roof_inspection_scheduled", "project_id=p-1&status=new", headers=headers)
    assert unknown.status_code == 200 and unknown.json()["known"] is False
    legacy = get(receiver, "/aurora/events/design_request_completion/0b4f-77", "status=designer_completed",
                 headers=headers)
    assert legacy.status_code == 200 and legacy.json()["known"] is True
    rows = inbox.read(0)
    assert [(r.event, r.known) for r in rows] == [("roof_inspection_scheduled", False),
                                                   ("design_request_completed", True)]
    assert rows[1].params == {"design_request_id": "0b4f-77", "status": "designer_completed"}
    assert rows[1].event_as_sent == "design_request_completion"


def test_health_and_methods(receiver):
    assert get(receiver, "/healthz").json() == {"status": "ok"}
    assert requests.post(f"{receiver.url}{STATUS}?{VALID}", headers={SECRET_HEADER: SECRET}).status_code == 405


def test_an_inbox_that_cannot_be_written_answers_503_so_aurora_retries(tmp_path):
    broken = Inbox(f"sqlite:///{tmp_path / 'empty.sqlite'}", create=False)  # a database without the tables
    with ReceiverThread(create_receiver_app(broken, [SECRET])) as server:
        response = get(server, STATUS, VALID, headers={SECRET_HEADER: SECRET})
        health = get(server, "/healthz")
    assert response.status_code == 503 and "retry" in response.json()["error"]
    assert health.status_code == 200  # the database itself answers
    broken.close()


def test_secrets_must_be_long_and_are_never_shown():
    with pytest.raises(ValueError, match="at least 16"):
        create_receiver_app(Inbox("sqlite://", create=False), ["short"])
    with pytest.raises(ValueError, match="never runs without"):
        create_receiver_app(Inbox("sqlite://", create=False), [])
    secret = webhook_secret_from_env({"AURORA_QB_WEBHOOK_SECRET": SECRET})
    assert SECRET not in repr(secret) and SECRET not in str(secret)
    assert webhook_secret_from_env({}) is None
    with pytest.raises(ValueError, match="too short"):
        webhook_secret_from_env({"AURORA_QB_WEBHOOK_SECRET": "abc"})
    with pytest.raises(ValueError, match="must not hold a password"):
        Settings.from_env({"AURORA_QB_INBOX_URL": "postgresql://aurora:hunter2@db/inbox"})
    assert Settings.from_env({"AURORA_QB_INBOX_URL": "postgresql://aurora@db/inbox"}).inbox_database_url


def test_the_secret_in_the_query_is_dropped_before_storing():
    event = parse_delivery("project_created", f"project_id=p1&source=app&token={SECRET}&TOKEN={SECRET}")
    assert SECRET not in repr(event) and event.all_params() == {"project_id": "p1", "source": "app"}


def test_serve_command_runs_the_receiver_as_a_process(tmp_path):
    env = {**os.environ, "AURORA_QB_WEBHOOK_SECRET": SECRET, "DAGSTER_HOME": str(tmp_path)}
    env.pop("AURORA_QB_INBOX_URL", None)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "aurora_qb_pipeline.cli", "webhooks", "serve", "--port", str(port),
               "--workers", "2", "--log-level", "info"]
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline and child.poll() is None, "receiver did not start"
            time.sleep(0.1)
        stored = requests.get(f"{url}{STATUS}?{VALID}&token={SECRET}", timeout=5)
        assert stored.status_code == 200 and stored.json()["status"] == "stored"
    finally:
        os.killpg(child.pid, signal.SIGINT)
        output = child.communicate(timeout=30)[0]
    assert Inbox(f"sqlite:///{tmp_path / 'aurora_qb_inbox.sqlite'}").summary()["events"] == 1
    assert f"GET {STATUS} -> 200" in output
    assert SECRET not in output and "project_id=" not in output  # requests are logged without their query


def test_serve_refuses_to_start_without_a_secret(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "AURORA_QB_WEBHOOK_SECRET"}
    result = subprocess.run([sys.executable, "-m", "aurora_qb_pipeline.cli", "webhooks", "serve"],
                            env={**env, "DAGSTER_HOME": str(tmp_path)}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "AURORA_QB_WEBHOOK_SECRET is not set" in result.stderr
