"""Alarm e-mail against a real SMTP server (aiosmtpd, in this process): the server is down when
the first alarms rise and comes up later (the bridge retries); transitions within the hold-off
go out in one mail; each recipient gets what its filters let through; the mails parse with
Python's email package; the journal records each mail sent. A JSON webhook to Python's own
HTTP server gets the same transitions with its header."""

import email
import email.policy
import http.server
import json
import sqlite3
import threading
import time

import pytest
from aiosmtpd.controller import Controller

from conftest import Simulator
from test_alarms_journal import Bridge, free_port, write_config


class Keep:
    """An SMTP handler that keeps every message."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content, policy=email.policy.default)))
        return "250 OK"


@pytest.fixture
def sim():
    s = Simulator()
    yield s
    s.stop()


def mails_to(keep, address):
    return [m for rcpt, m in keep.messages if address in rcpt]


def wait_for(pred, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.2)
    return False


class Hooks(http.server.BaseHTTPRequestHandler):
    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hooks.received.append((self.path, self.headers.get("Authorization"), self.headers.get("Content-Type"),
                               json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_alarm_mail_retries_gathers_filters_and_is_recorded(sim, tmp_path):
    smtp_port = free_port()
    hooks = http.server.HTTPServer(("127.0.0.1", 0), Hooks)
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    hook_port = hooks.server_address[1]
    config, journal = write_config(tmp_path, sim, "Mail Site", f"""  email:
    server: 127.0.0.1
    port: {smtp_port}
    security: none
    from: "Busbar <busbar@mail.example>"
    hold_off_s: 2
    recipients:
      - {{ to: ops@mail.example, min_severity: major }}
      - {{ to: shop@mail.example, devices: [shop_breaker], kinds: [raised, cleared, acknowledged] }}
      - {{ to: nobody@mail.example, min_severity: critical }}
  webhooks:
    - {{ url: "http://127.0.0.1:{hook_port}/hook", min_severity: major, hold_off_s: 1, headers: {{ Authorization: "Bearer hook-secret" }} }}
""")
    keep = Keep()
    controller = Controller(keep, hostname="127.0.0.1", port=smtp_port)
    bridge = Bridge(config)
    try:
        # Two alarms within the hold-off, while the SMTP server is still down.
        sim.api("POST", "/api/devices/ats/events", {"event": "mains_lost"})
        sim.api("POST", "/api/devices/shop_breaker/events", {"event": "breaker_trip", "cause": "overload"})
        bridge.wait_alarm("device/shop_breaker/state", lambda a: a["state"]["active"])
        time.sleep(3.5)  # the hold-off ends and the first attempts find no server
        controller.start()
        assert wait_for(lambda: mails_to(keep, "ops@mail.example") and mails_to(keep, "shop@mail.example")), keep.messages

        ops = mails_to(keep, "ops@mail.example")
        assert len(ops) == 1, [m["Subject"] for m in ops]
        body = ops[0].get_content()
        assert "device/ats/source1_state" in body and "device/shop_breaker/state" in body, body
        assert ops[0]["Subject"].startswith("[Mail Site] 2 alarm transitions, the worst MAJOR raised"), ops[0]["Subject"]
        assert ops[0]["From"] == "Busbar <busbar@mail.example>"
        shop = mails_to(keep, "shop@mail.example")
        assert len(shop) == 1 and "source1_state" not in shop[0].get_content(), shop[0].get_content()
        assert shop[0]["Subject"] == "[Mail Site] MAJOR raised: shop_breaker Breaker state: tripped"

        # An acknowledgement reaches the recipient that asked for them, with who did it.
        bridge.post("/api/alarms/acknowledge", {"id": "device/shop_breaker/state", "user": "dan", "comment": "going"})
        assert wait_for(lambda: len(mails_to(keep, "shop@mail.example")) == 2), [m["Subject"] for _, m in keep.messages]
        ack = mails_to(keep, "shop@mail.example")[1].get_content()
        assert "acknowledged" in ack and "by dan via http: going" in ack, ack
        assert mails_to(keep, "nobody@mail.example") == [], "nothing critical happened"

        # The webhook got the raises as JSON, with its header.
        assert Hooks.received, "no webhook call"
        path, auth, ctype, doc = Hooks.received[0]
        assert (path, auth, ctype) == ("/hook", "Bearer hook-secret", "application/json")
        assert doc["site"] == "Mail Site"
        kinds = {(t["alarm"], t["kind"]) for _, _, _, d in Hooks.received for t in d["transitions"]}
        assert {("device/ats/source1_state", "raised"), ("device/shop_breaker/state", "raised")} <= kinds, kinds

        db = sqlite3.connect(journal)
        rows = db.execute("SELECT channel, recipient, outcome, attempts FROM notifications ORDER BY id").fetchall()
        db.close()
        mails = [r for r in rows if r[0] == "email"]
        assert [r[2] for r in mails] == ["sent"] * 3, rows
        assert max(r[3] for r in mails) >= 2, f"the first mails were retried: {rows}"
        assert any(r[0] == "webhook" and r[2] == "sent" for r in rows), rows
    finally:
        bridge.stop()
        hooks.shutdown()
        try:
            controller.stop()
        except Exception:
            pass
