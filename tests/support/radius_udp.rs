//! A minimal RADIUS client over UDP for the integration tests, built with the protocol crate:
//! PAP Access-Requests signed with Message-Authenticator, and the reply's code once its
//! Response Authenticator checks out.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use portcullis_protocol::radius::{Builder, Code, Packet, Secret, attr_type};

/// A signed PAP Access-Request for `user` / `password`.
pub fn access_request(id: u8, user: &str, password: &str, secret: &str) -> (Vec<u8>, [u8; 16]) {
    let mut authenticator = [0u8; 16];
    getrandom::fill(&mut authenticator).expect("random");
    let secret = Secret::new(secret.as_bytes());
    let mut buf = [0u8; 4096];
    let mut builder =
        Builder::new(&mut buf, Code::AccessRequest, id, &authenticator).expect("builder");
    builder
        .message_authenticator()
        .expect("message authenticator");
    builder
        .attribute(attr_type::USER_NAME, user.as_bytes())
        .expect("user name");
    builder
        .user_password(password.as_bytes(), &secret)
        .expect("password");
    let len = builder.finish_request(&secret).expect("finish");
    (buf[..len].to_vec(), authenticator)
}

/// Sends one Access-Request to `addr` and returns the code of the verified reply, or `None`
/// when no valid reply came within `timeout`.
pub fn login(
    addr: SocketAddr,
    secret: &str,
    user: &str,
    password: &str,
    timeout: Duration,
) -> Option<Code> {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.set_read_timeout(Some(timeout)).expect("timeout");
    let (request, authenticator) = access_request(1, user, password, secret);
    socket.send_to(&request, addr).expect("send");
    let mut buf = [0u8; 4096];
    let len = socket.recv(&mut buf).ok()?;
    let reply = Packet::new_checked(&buf[..len]).ok()?;
    reply
        .verify_reply(&authenticator, &Secret::new(secret.as_bytes()))
        .ok()?;
    (reply.identifier() == 1).then(|| reply.code())
}
