"""pyrad2 (PyPI `pyrad2`, 3.2) as an independent RadSec peer: a probe, not wired into the tests.

pyrad2 needs Python >= 3.12 (it imports collections.abc.Buffer), so run this with a 3.12+
interpreter that has it, e.g.

    python3.12 -m venv target/pyrad2-venv
    target/pyrad2-venv/bin/pip install pyrad2==3.2
    target/pyrad2-venv/bin/python tests/peers/pyrad2_probe.py ...

Modes (every certificate and key is a PEM file; every line printed is one JSON object):

  client  --port P [--host 127.0.0.1] --ca CA --cert CERT --key KEY
          [--user alice] [--password alice-password] [--versions 1.0|1.1|1.0,1.1]
          [--tls 1.3|1.2|any] [--no-check-hostname] [--timeout 5]
      RadSec client (RFC 6614): one PAP Access-Request to HOST:PORT over TLS (secret
      "radsec"), presenting CERT, trusting only CA. --versions is what it offers by ALPN:
      1.0 (the default) offers nothing and speaks RFC 6614; 1.1 offers only "radius/1.1"
      (RFC 9765, strict); 1.0,1.1 offers both. --tls: pyrad2's default is TLS 1.3 only
      (its minimum_tls_version); 1.2 pins TLS 1.2 (the probe sets the SSLContext's
      maximum_version, pyrad2 has no option for it); any allows both. RADIUS/1.1 forces 1.3.
      Prints the reply code, Class values, TLS version, ALPN and negotiated RADIUS version,
      or the error. Exit status 0 on a reply.

  server  --port P [--host 127.0.0.1] --ca CA --cert CERT --key KEY
          [--versions ...] [--tls 1.3|1.2|any] [--optional-client-cert] [--seconds 60]
      RadSec server answering alice / alice-password with Access-Accept (Class "admins"),
      everyone else with Access-Reject, on HOST:PORT for --seconds seconds at most. Requires a
      client certificate signed by CA unless --optional-client-cert. Prints {"listening": ...}
      once the socket is open, then one line per request with the negotiated version.

  selftest --ca CA --server-cert C --server-key K --client-cert C --client-key K
      pyrad2 server and pyrad2 client in one process on a free loopback port, for each pair of
      offered versions: shows what pyrad2 negotiates against itself (RADIUS/1.1 both ways).
"""

import argparse
import asyncio
import json
import os
import socket
import ssl
import sys
import tempfile

from loguru import logger

from pyrad2.constants import PacketType
from pyrad2.dictionary import Dictionary
from pyrad2.radsec.client import RadSecClient
from pyrad2.radsec.server import RadSecServer
from pyrad2.radsec.v11 import RadiusVersion
from pyrad2.server import RemoteHost

RADSEC_SECRET = b"radsec"
USERS = {"alice": "alice-password"}

# What the probe sends and reads; pyrad2 parses FreeRADIUS-format dictionaries.
DICTIONARY = """\
ATTRIBUTE\tUser-Name\t1\tstring
ATTRIBUTE\tUser-Password\t2\tstring\tencrypt=1
ATTRIBUTE\tFilter-Id\t11\tstring
ATTRIBUTE\tReply-Message\t18\tstring
ATTRIBUTE\tClass\t25\toctets
ATTRIBUTE\tSession-Timeout\t27\tinteger
ATTRIBUTE\tNAS-Identifier\t32\tstring
ATTRIBUTE\tProxy-State\t33\toctets
ATTRIBUTE\tMessage-Authenticator\t80\toctets
"""


def dictionary() -> Dictionary:
    with tempfile.NamedTemporaryFile("w", suffix=".dictionary", delete=False) as f:
        f.write(DICTIONARY)
    try:
        return Dictionary(f.name)
    finally:
        os.unlink(f.name)


def versions(text: str) -> tuple[RadiusVersion, ...]:
    by_name = {"1.0": RadiusVersion.V1_0, "1.1": RadiusVersion.V1_1}
    return tuple(by_name[v.strip()] for v in text.split(",") if v.strip())


def version_name(version: RadiusVersion) -> str:
    return "1.1" if version == RadiusVersion.V1_1 else "1.0"


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


async def run_client(
    host: str,
    port: int,
    ca: str,
    cert: str,
    key: str,
    user: str,
    password: str,
    offered: tuple[RadiusVersion, ...],
    tls: str,
    check_hostname: bool,
    timeout: float,
) -> dict:
    client = RadSecClient(
        server=host,
        port=port,
        secret=RADSEC_SECRET,
        dict=dictionary(),
        retries=1,
        timeout=timeout,
        certfile=cert,
        keyfile=key,
        certfile_server=ca,
        check_hostname=check_hostname,
        minimum_tls_version=minimum_tls(tls),
        reconnect_backoff=0,
        radius_versions=offered,
    )
    if tls == "1.2":
        client.ssl_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    result: dict = {"offered": [version_name(v) for v in offered]}
    try:
        request = client.create_auth_packet(User_Name=user, NAS_Identifier="pyrad2-probe")
        # Deferred so the password is MD5-hidden in RADIUS/1.0 and plain in RADIUS/1.1.
        request.set_obfuscated("User-Password", password)
        try:
            # Bounded: a strict RADIUS/1.1 client refusing a server without ALPN waits in
            # pyrad2's close for the server to close the TCP connection, beyond its timeout.
            reply = await asyncio.wait_for(client.send_packet(request), timeout=timeout + 2)
        except asyncio.TimeoutError:
            reply = None
            client.last_error = client.last_error or TimeoutError(
                f"no reply within {timeout + 2} s (pyrad2 still closing the connection)")
        writer = client._writer
        ssl_object = writer.get_extra_info("ssl_object") if writer is not None else None
        if ssl_object is not None:
            result["tls"] = ssl_object.version()
            result["alpn"] = ssl_object.selected_alpn_protocol()
        result["radius"] = version_name(client._negotiated_version)
        if reply is None:
            result["error"] = repr(client.last_error)
        else:
            result["code"] = PacketType(reply.code).name
            result["classes"] = [
                c.decode(errors="replace") if isinstance(c, bytes) else str(c)
                for c in reply.get("Class", [])
            ]
    except Exception as exc:  # the probe reports whatever went wrong
        result["error"] = repr(exc)
    finally:
        await close_bounded(client)
    return result


async def close_bounded(client: RadSecClient) -> None:
    """RadSecClient.close() waits for the server to close the TCP connection after pyrad2's
    close_notify; FreeRADIUS 3.2.1 only does so at its idle timeout. Abort after 1 s."""
    writer = client._writer
    try:
        await asyncio.wait_for(client.close(), timeout=1)
    except (asyncio.TimeoutError, OSError, ssl.SSLError):
        if writer is not None:
            writer.transport.abort()


def minimum_tls(tls: str) -> ssl.TLSVersion:
    return ssl.TLSVersion.TLSv1_3 if tls == "1.3" else ssl.TLSVersion.TLSv1_2


class ProbeServer(RadSecServer):
    """Accepts USERS with their passwords (PAP), rejects everyone else."""

    async def handle_access_request(self, packet):
        user = packet.get("User-Name", [""])[0]
        hidden = packet.get(2, [b""])[0]
        password = packet.pw_decrypt(hidden) if hidden else ""
        accepted = USERS.get(user) == password
        emit(
            request="Access-Request",
            user=user,
            radius=version_name(packet.radius_version),
            accepted=accepted,
        )
        reply = packet.create_reply()
        if accepted:
            reply.code = PacketType.AccessAccept
            reply["Class"] = [b"admins"]
        else:
            reply.code = PacketType.AccessReject
        return reply

    async def handle_accounting(self, packet):
        reply = packet.create_reply()
        reply.code = PacketType.AccountingResponse
        return reply


def make_server(
    host: str,
    port: int,
    ca: str,
    cert: str,
    key: str,
    offered: tuple[RadiusVersion, ...],
    tls: str,
    require_client_cert: bool,
) -> ProbeServer:
    server = ProbeServer(
        listen_address=host,
        listen_port=port,
        hosts={host: RemoteHost(host, RADSEC_SECRET, "probe-client")},
        dictionary=dictionary(),
        certfile=cert,
        keyfile=key,
        ca_certfile=ca,
        verify_mode=ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL,
        minimum_tls_version=minimum_tls(tls),
        radius_versions=offered,
    )
    if tls == "1.2":
        server.ssl_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return server


async def serve(server: ProbeServer, seconds: float, ready: asyncio.Event | None = None) -> None:
    listener = await asyncio.start_server(
        server._handle_client,
        host=server.listen_address,
        port=server.listen_port,
        ssl=server.ssl_ctx,
    )
    address = listener.sockets[0].getsockname()
    emit(listening=f"{address[0]}:{address[1]}",
         offered=[version_name(v) for v in server.radius_versions])
    if ready is not None:
        ready.set()
    async with listener:
        try:
            await asyncio.wait_for(listener.serve_forever(), timeout=seconds)
        except asyncio.TimeoutError:
            pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def selftest(args) -> None:
    combinations = [("1.0", "1.0"), ("1.1", "1.1"), ("1.0,1.1", "1.0,1.1"),
                    ("1.0,1.1", "1.0"), ("1.0", "1.0,1.1"), ("1.1", "1.0"), ("1.0", "1.1")]
    for server_versions, client_versions in combinations:
        port = free_port()
        server = make_server("127.0.0.1", port, args.ca, args.server_cert, args.server_key,
                             versions(server_versions), "1.3", True)
        ready = asyncio.Event()
        task = asyncio.create_task(serve(server, 10, ready))
        await asyncio.wait_for(ready.wait(), timeout=5)
        result = await run_client("127.0.0.1", port, args.ca, args.client_cert,
                                  args.client_key, "alice", "alice-password",
                                  versions(client_versions), "1.3", True, 3)
        result["server_offered"] = server_versions.split(",")
        emit(**result)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_subparsers(dest="mode", required=True)

    client = modes.add_parser("client")
    client.add_argument("--host", default="127.0.0.1")
    client.add_argument("--port", type=int, required=True)
    client.add_argument("--ca", required=True)
    client.add_argument("--cert", required=True)
    client.add_argument("--key", required=True)
    client.add_argument("--user", default="alice")
    client.add_argument("--password", default="alice-password")
    client.add_argument("--versions", default="1.0")
    client.add_argument("--tls", choices=["1.3", "1.2", "any"], default="1.3")
    client.add_argument("--no-check-hostname", action="store_true")
    client.add_argument("--timeout", type=float, default=5)

    server = modes.add_parser("server")
    server.add_argument("--host", default="127.0.0.1")
    server.add_argument("--port", type=int, required=True)
    server.add_argument("--ca", required=True)
    server.add_argument("--cert", required=True)
    server.add_argument("--key", required=True)
    server.add_argument("--versions", default="1.0")
    server.add_argument("--tls", choices=["1.3", "1.2", "any"], default="1.3")
    server.add_argument("--optional-client-cert", action="store_true")
    server.add_argument("--seconds", type=float, default=60)

    test = modes.add_parser("selftest")
    test.add_argument("--ca", required=True)
    test.add_argument("--server-cert", required=True)
    test.add_argument("--server-key", required=True)
    test.add_argument("--client-cert", required=True)
    test.add_argument("--client-key", required=True)

    args = parser.parse_args()
    # pyrad2 logs through loguru; keep its warnings and errors on stderr only.
    logger.remove()
    logger.add(sys.stderr, level=os.environ.get("PYRAD2_PROBE_LOG", "WARNING"))

    if args.mode == "client":
        result = asyncio.run(run_client(
            args.host, args.port, args.ca, args.cert, args.key, args.user, args.password,
            versions(args.versions), args.tls, not args.no_check_hostname, args.timeout))
        emit(**result)
        return 0 if "code" in result else 1
    if args.mode == "server":
        server = make_server(args.host, args.port, args.ca, args.cert, args.key,
                             versions(args.versions), args.tls,
                             not args.optional_client_cert)
        asyncio.run(serve(server, args.seconds))
        return 0
    asyncio.run(selftest(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
