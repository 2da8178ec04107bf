"""RADIUS client for tests/upstream_challenge.rs, on pyrad: follows Access-Challenges.

usage: challenge_radius.py DICTIONARY PORT SECRET USER ANSWER...

Sends an Access-Request with USER and the first ANSWER as User-Password; while the reply is
an Access-Challenge and answers are left, sends the next ANSWER with the challenge's State.
Prints one JSON line: each reply's code, Reply-Messages, State length, and whether its
Message-Authenticator verifies.
"""

import json, sys

from pyrad import packet
from pyrad.client import Client
from pyrad.dictionary import Dictionary

dictionary, port, secret, user = sys.argv[1:5]
answers = sys.argv[5:]
client = Client(server="127.0.0.1", authport=int(port), secret=secret.encode(),
                dict=Dictionary(dictionary))
client.timeout = 3
client.retries = 1

replies = []
state = None
for answer in answers:
    request = client.CreateAuthPacket(code=packet.AccessRequest, User_Name=user)
    request["User-Password"] = request.PwCrypt(answer)
    if state is not None:
        request["State"] = state
    request.add_message_authenticator()
    reply = client.SendPacket(request)
    states = reply.get("State", [])
    replies.append({
        "code": reply.code,
        "messages": list(reply.get("Reply-Message", [])),
        "state_len": len(states[0]) if states else 0,
        "signed": reply.message_authenticator is not None
            and reply.verify_message_authenticator(
                original_authenticator=request.authenticator, original_code=request.code),
    })
    if reply.code != packet.AccessChallenge:
        break
    state = states[0]
print(json.dumps(replies))
