//! Notifications from the database (`LISTEN`/`NOTIFY`): how a node learns at once what
//! another node wrote (a throttle count, a configuration change).
//!
//! One dedicated connection per node listens on every channel (a pooled connection does not
//! hand out notifications). When it breaks it is opened again after a pause, and each
//! subscriber is told ([`Notice::Connected`]) so that it reads again what it may have missed.

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::AsyncMessage;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};

use super::Pg;

/// What a subscriber hears.
#[derive(Debug)]
pub enum Notice<'a> {
    /// The listening connection is (again) up: what was sent while it was down is lost, so
    /// read the state again.
    Connected,
    /// The listening connection broke; notifications stop until it is up again.
    Lost,
    /// A notification on the subscriber's channel.
    Message(&'a str),
}

/// A subscriber: called on the driver's runtime, so it must not block for long.
pub type Handler = Arc<dyn Fn(Notice<'_>) + Send + Sync>;

/// The pause before the listening connection is opened again.
const RECONNECT: Duration = Duration::from_secs(1);

impl Pg {
    /// Starts listening on each channel of `subscribers` (call once, with all of them).
    pub fn listen(&self, subscribers: Vec<(&'static str, Handler)>) {
        let Some(runtime) = &self.runtime else {
            return;
        };
        let config = self.driver.clone();
        let tls = self.tls.clone();
        runtime.spawn(async move {
            loop {
                let ended = match &tls {
                    Some(tls) => listen_once(&config, tls.clone(), &subscribers).await,
                    None => listen_once(&config, tokio_postgres::NoTls, &subscribers).await,
                };
                if let Err(e) = ended {
                    tracing::warn!(error = %e, "state database: listening connection lost");
                }
                for (_, handler) in &subscribers {
                    handler(Notice::Lost);
                }
                tokio::time::sleep(RECONNECT).await;
            }
        });
    }
}

/// Opens the listening connection, listens, and hands out notifications until it breaks.
async fn listen_once<T>(
    config: &tokio_postgres::Config,
    tls: T,
    subscribers: &[(&'static str, Handler)],
) -> Result<(), tokio_postgres::Error>
where
    T: MakeTlsConnect<tokio_postgres::Socket>,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<tokio_postgres::Socket>>::Future: Send,
{
    let (client, mut connection) = config.connect(tls).await?;
    let (messages, mut received) = tokio::sync::mpsc::unbounded_channel();
    // The connection is driven here; the client's LISTEN goes through it.
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if messages
                        .send((n.channel().to_owned(), n.payload().to_owned()))
                        .is_err()
                    {
                        return Ok(());
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            }
        }
    });
    let listen: String = subscribers
        .iter()
        .map(|(channel, _)| format!("LISTEN {channel};"))
        .collect();
    if let Err(e) = client.batch_execute(&listen).await {
        driver.abort();
        return Err(e);
    }
    for (_, handler) in subscribers {
        handler(Notice::Connected);
    }
    while let Some((channel, payload)) = received.recv().await {
        for (name, handler) in subscribers {
            if *name == channel {
                handler(Notice::Message(&payload));
            }
        }
    }
    drop(client);
    match driver.await {
        Ok(result) => result,
        Err(_) => Ok(()),
    }
}
