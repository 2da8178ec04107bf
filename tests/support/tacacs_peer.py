"""Drives the test TACACS+ server (tests/support/tacacs_server.rs) with the `tacacs_plus`
client library, an independent implementation of the protocol.

Usage: tacacs_peer.py HOST PORT KEY

Users the server must know (tests/tacacs_client.rs sets them up):
  alice / alice-pw  authorization PASS_ADD with role=admin, priv-lvl=15
  mallory / mallory-pw  authorization FAIL

Prints one line per check and exits 0 only if every check holds. A missing `tacacs_plus`
package is an error, not a skip.
"""

import sys

try:
    from tacacs_plus.client import TACACSClient
    from tacacs_plus.flags import (
        TAC_PLUS_AUTHEN_TYPE_ASCII,
        TAC_PLUS_AUTHEN_TYPE_PAP,
        TAC_PLUS_AUTHOR_STATUS_PASS_ADD,
    )
except ImportError as e:
    sys.exit(f"the Python package tacacs_plus is missing ({e}); install it with "
             "'python3 -m pip install tacacs_plus==2.6'")

PORT_NAME = "peer-tty7"
REM_ADDR = "198.51.100.9"


def main():
    host, port, key = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    failures = []

    def check(name, ok):
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
        if not ok:
            failures.append(name)

    def client():
        # A new client, so a new session_id, per exchange.
        return TACACSClient(host, port, key, timeout=5)

    def authenticate(user, password, authen_type):
        return client().authenticate(user, password, authen_type=authen_type,
                                     rem_addr=REM_ADDR, port=PORT_NAME)

    pap = TAC_PLUS_AUTHEN_TYPE_PAP
    ascii_ = TAC_PLUS_AUTHEN_TYPE_ASCII
    check("pap good password is valid", authenticate("alice", "alice-pw", pap).valid)
    check("pap wrong password is invalid", authenticate("alice", "nope", pap).invalid)
    check("pap unknown user is invalid", authenticate("nobody", "alice-pw", pap).invalid)
    check("ascii good password is valid", authenticate("alice", "alice-pw", ascii_).valid)
    check("ascii wrong password is invalid", authenticate("alice", "nope", ascii_).invalid)

    reply = client().authorize("alice", arguments=[b"service=portcullis"],
                               authen_type=pap, rem_addr=REM_ADDR, port=PORT_NAME)
    check("authorize alice is valid", reply.valid)
    check("authorize alice is PASS_ADD", reply.status == TAC_PLUS_AUTHOR_STATUS_PASS_ADD)
    check("authorize alice returns the AV pairs",
          reply.arguments == [b"role=admin", b"priv-lvl=15"])

    reply = client().authorize("mallory", arguments=[b"service=portcullis"],
                               authen_type=pap, rem_addr=REM_ADDR, port=PORT_NAME)
    check("authorize mallory is refused", reply.invalid)

    if failures:
        sys.exit(f"{len(failures)} checks failed: {', '.join(failures)}")
    print("all checks passed")


if __name__ == "__main__":
    main()
