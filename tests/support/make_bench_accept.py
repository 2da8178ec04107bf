#!/usr/bin/env python3
"""Writes protocol/tests/fixtures/radius/bench-access-accept.bin.

A realistic Access-Accept of 15 attributes (two Vendor-Specific, a Message-Authenticator first)
signed with Python's hashlib/hmac, an implementation independent of portcullis, so the codec's
verification of it is a real check. Secret, identifier and Request Authenticator are below and
in the fixtures README.
"""
import hashlib
import hmac
import pathlib
import struct

SECRET = b"bench-secret-0123456789"
IDENTIFIER = 0x2A
REQUEST_AUTH = bytes(range(0x10, 0x20))


def attr(typ, value):
    return bytes([typ, 2 + len(value)]) + value


def vsa(vendor, subs):
    data = b"".join(bytes([t, 2 + len(v)]) + v for t, v in subs)
    return attr(26, struct.pack(">I", vendor) + data)


attrs = [
    attr(80, bytes(16)),                       # Message-Authenticator (filled below)
    attr(6, struct.pack(">I", 1)),             # Service-Type = Login
    attr(1, b"alice"),                         # User-Name
    attr(25, b"admins"),                       # Class
    attr(25, b"auditors"),                     # Class
    attr(11, b"web-ro"),                       # Filter-Id
    attr(18, b"Welcome alice"),                # Reply-Message
    attr(27, struct.pack(">I", 3600)),         # Session-Timeout
    attr(28, struct.pack(">I", 600)),          # Idle-Timeout
    attr(29, struct.pack(">I", 1)),            # Termination-Action
    attr(85, struct.pack(">I", 300)),          # Acct-Interim-Interval
    attr(8, bytes([192, 0, 2, 5])),            # Framed-IP-Address
    vsa(17164, [(1, b"2")]),                   # vendor 17164, role attribute
    vsa(9, [(1, b"shell:priv-lvl=15")]),       # Cisco-AVPair
    attr(33, b"proxy-state-1"),                # Proxy-State
]
body = b"".join(attrs)
length = 20 + len(body)
header = struct.pack(">BBH", 2, IDENTIFIER, length)
# RFC 3579 §3.2: HMAC-MD5 over the packet with the Request Authenticator in place and the
# Message-Authenticator value zeroed.
mac = hmac.new(SECRET, header + REQUEST_AUTH + body, hashlib.md5).digest()
body = attr(80, mac) + body[18:]
# RFC 2865 §3: Response Authenticator.
resp = hashlib.md5(header + REQUEST_AUTH + body + SECRET).digest()
packet = header + resp + body
out = pathlib.Path(__file__).resolve().parents[2] / "protocol/tests/fixtures/radius/bench-access-accept.bin"
out.write_bytes(packet)
print(f"{out}: {len(packet)} octets")
