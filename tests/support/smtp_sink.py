"""An SMTP relay for the MFA delivery tests: aiosmtpd on 127.0.0.1, optionally with STARTTLS
and AUTH required. Prints `READY <port>` once it accepts connections, then one JSON line per
message it accepted: {"mail_from", "rcpt_tos", "login", "tls", "data"}. Runs until stdin
closes (the test process ends or drops it).

usage: smtp_sink.py [--cert CERT --key KEY] [--user USER --password PASSWORD]
"""

import argparse
import json
import socket
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Sink:
    async def handle_DATA(self, server, session, envelope):
        login = (
            session.auth_data.login.decode()
            if session.authenticated and session.auth_data
            else None
        )
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "login": login,
            "tls": session.ssl is not None,
            "data": envelope.original_content.decode("utf-8", "replace"),
        }
        print(json.dumps(record), flush=True)
        return "250 OK queued"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args()

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()

    kwargs = {}
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
        kwargs.update(tls_context=context, require_starttls=True)
    if args.user:
        expected = (args.user.encode(), args.password.encode())

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (auth_data.login, auth_data.password) == expected
            return AuthResult(success=ok, handled=False, auth_data=auth_data)

        kwargs.update(
            authenticator=authenticator, auth_required=True, auth_require_tls=True
        )
    controller = Controller(Sink(), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    print(f"READY {port}", flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
