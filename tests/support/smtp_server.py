#!/usr/bin/env python3
"""A real SMTP server on loopback for warmline's email tests (aiosmtpd).

    python3 tests/support/smtp_server.py DIR [--auth USER:PASSWORD]

Binds 127.0.0.1 on a port the OS picks and prints that port as the first
line of stdout. Every accepted message is written to DIR as one JSON file
(`000001.json`, … in order of acceptance, written atomically so a reader
never sees half a file) holding the envelope, the raw data, and the message
parsed by Python's `email` package (headers unfolded, text and html bodies).

Scripted answers, by recipient local part:
- `bounce…` -> `550 5.1.1 user unknown` (permanent)
- `defer…`  -> `451 4.3.0 try again later` (transient)
- `reject…` -> accepted at RCPT, refused after DATA with `554 5.7.1 message
  refused` (nothing stored)
- `slow…`   -> accepted, but the reply to DATA comes SLOW_SECONDS late (the
  message is stored first: a client that gave up still delivered it)

With `--auth`, AUTH (PLAIN or LOGIN, allowed without TLS: loopback only) is
required before MAIL, and only USER:PASSWORD is accepted.

Exits when stdin closes (the test process went away) or on SIGTERM/SIGINT.
Exit status 3 with a message on stderr when aiosmtpd is not installed.
"""

import argparse
import asyncio
import email
import email.policy
import itertools
import json
import logging
import os
import signal
import sys
import threading
import warnings

try:
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
except ImportError:
    print(
        "aiosmtpd is not installed: run scripts/ensure-test-tools "
        "(python3 -m pip install aiosmtpd==1.4.6)",
        file=sys.stderr,
        flush=True,
    )
    sys.exit(3)


SLOW_SECONDS = 2.0


def local_part(address):
    return address.split("@", 1)[0].lower()


class Handler:
    def __init__(self, directory):
        self.directory = directory
        self.counter = itertools.count(1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = local_part(address)
        if local.startswith("bounce"):
            return "550 5.1.1 user unknown"
        if local.startswith("defer"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if any(local_part(r).startswith("reject") for r in envelope.rcpt_tos):
            return "554 5.7.1 message refused"
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        text = parsed.get_body(("plain",))
        html = parsed.get_body(("html",))
        n = next(self.counter)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "auth_login": session.auth_data if session.authenticated else None,
            "data": raw.decode("utf-8", "replace"),
            "headers": [[k, str(v)] for k, v in parsed.items()],
            "content_type": parsed.get_content_type(),
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
        }
        path = os.path.join(self.directory, f"{n:06d}.json")
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f)
        # The reply below is what the client waits for: the file is complete
        # (renamed into place) before the client can learn of acceptance.
        os.replace(tmp, path)
        if any(local_part(r).startswith("slow") for r in envelope.rcpt_tos):
            await asyncio.sleep(SLOW_SECONDS)
        return f"250 2.0.0 OK: queued as {n}"


def authenticator_for(user, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        if ok:
            return AuthResult(success=True, auth_data=user)
        # handled=False: aiosmtpd answers 535 itself (True would mean we had).
        return AuthResult(success=False, handled=False)

    return authenticate


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("--auth", metavar="USER:PASSWORD")
    args = parser.parse_args()
    # AUTH without TLS is intended here (loopback only); keep stderr for
    # real problems.
    warnings.filterwarnings("ignore")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    os.makedirs(args.directory, exist_ok=True)

    loop = asyncio.get_running_loop()
    handler = Handler(args.directory)
    options = {"hostname": "localhost", "loop": loop}
    if args.auth:
        user, _, password = args.auth.partition(":")
        options.update(
            auth_required=True,
            auth_require_tls=False,
            authenticator=authenticator_for(user, password),
        )
    server = await loop.create_server(
        lambda: SMTP(handler, **options), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def watch_stdin():
        # Blocks until the parent closes our stdin or dies.
        sys.stdin.buffer.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    await stop.wait()
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
