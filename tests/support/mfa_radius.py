"""RADIUS MFA client for tests/frontend_mfa.rs, on pyrad.

usage: mfa_radius.py DICTIONARY PORT SECRET USER PASSWORD TOTP_SECRET_B32 STEP

Sends an Access-Request with USER and PASSWORD; when the answer is an Access-Challenge,
answers it with the TOTP code of STEP (computed here, RFC 6238 with SHA-1, 6 digits) and the
challenge's State, then sends the same State again (a replay). Prints one JSON line with each
reply's code, Reply-Messages and State length, and whether its Message-Authenticator verifies.
"""

import base64, hashlib, hmac, json, struct, sys

from pyrad import packet
from pyrad.client import Client
from pyrad.dictionary import Dictionary


def totp(secret_b32, step):
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return "%06d" % (value % 1000000)


dictionary, port, secret, user, password, totp_secret, step = sys.argv[1:8]
client = Client(server="127.0.0.1", authport=int(port), secret=secret.encode(),
                dict=Dictionary(dictionary))
client.timeout = 3
client.retries = 1


def send(password, state=None):
    request = client.CreateAuthPacket(code=packet.AccessRequest, User_Name=user)
    request["User-Password"] = request.PwCrypt(password)
    if state is not None:
        request["State"] = state
    request.add_message_authenticator()
    reply = client.SendPacket(request)
    states = reply.get("State", [])
    return reply, {
        "code": reply.code,
        "messages": list(reply.get("Reply-Message", [])),
        "state_len": len(states[0]) if states else 0,
        "signed": reply.message_authenticator is not None
            and reply.verify_message_authenticator(
                original_authenticator=request.authenticator, original_code=request.code),
    }


first, first_json = send(password)
result = {"first": first_json}
if first.code == packet.AccessChallenge:
    state = first["State"][0]
    code = totp(totp_secret, int(step))
    result["code"] = code
    _, result["answer"] = send(code, state)
    _, result["replay"] = send(code, state)
print(json.dumps(result))
