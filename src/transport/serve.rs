//! Accepting connections for a long-running transport (`relay`, `milter`): a TCP
//! address or a Unix socket, a cap on sessions in flight, and a graceful stop on SIGTERM
//! or SIGINT: the listener closes, sessions in flight finish (up to a grace period), and
//! the process exits.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Semaphore, watch};

/// Where to listen: `HOST:PORT`, or `unix:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Tcp(String),
    Unix(PathBuf),
}

impl ListenAddr {
    pub fn parse(s: &str) -> ListenAddr {
        match s.strip_prefix("unix:") {
            Some(path) => ListenAddr::Unix(PathBuf::from(path)),
            None => ListenAddr::Tcp(s.to_string()),
        }
    }
}

/// A bound listener.
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Binds `addr`; a stale Unix socket file from an earlier run is replaced, and the
    /// new one gets `socket_mode` (connecting to a socket needs write permission on it:
    /// the MTA's user or group must have it).
    pub async fn bind(addr: &ListenAddr, socket_mode: u32) -> std::io::Result<Listener> {
        match addr {
            ListenAddr::Tcp(a) => Ok(Listener::Tcp(TcpListener::bind(a).await?)),
            ListenAddr::Unix(path) => {
                if path.exists() {
                    std::fs::remove_file(path)?;
                }
                let listener = UnixListener::bind(path)?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(socket_mode))?;
                Ok(Listener::Unix(listener, path.clone()))
            }
        }
    }

    /// The bound address in words (the port the OS chose for `:0`).
    pub fn local_addr(&self) -> String {
        match self {
            Listener::Tcp(l) => l
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "?".into()),
            Listener::Unix(_, path) => format!("unix:{}", path.display()),
        }
    }

    async fn accept(&self) -> std::io::Result<(Box<dyn ConnectionBox>, String)> {
        match self {
            Listener::Tcp(l) => {
                let (s, peer) = l.accept().await?;
                let _ = s.set_nodelay(true);
                Ok((Box::new(s), peer.to_string()))
            }
            Listener::Unix(l, _) => {
                let (s, _) = l.accept().await?;
                Ok((Box::new(s), "unix".into()))
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// One accepted connection, whichever kind of socket it came on.
pub trait ConnectionBox: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ConnectionBox for T {}

/// How a server treats connections.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Sessions in flight at most; a connection past it is handed to `over_cap`.
    pub max_sessions: usize,
    /// How long sessions in flight may take to finish after SIGTERM.
    pub drain: Duration,
}

/// A session's work, boxed: the server spawns it on the runtime.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Tells sessions the server is stopping (for them to refuse new transactions).
#[derive(Clone)]
pub struct Stopping(watch::Receiver<bool>);

impl Stopping {
    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }
}

/// Serves `listener` until SIGTERM or SIGINT (or `stop` resolves): each connection runs
/// `session`; a connection over the cap, or one that comes while draining, runs
/// `refuse` instead (the relay answers 421). Returns once the sessions have drained.
pub async fn serve<S, R>(
    listener: Listener,
    options: ServeOptions,
    session: S,
    refuse: R,
) -> std::io::Result<()>
where
    S: Fn(Box<dyn ConnectionBox>, String, Stopping) -> Task + Send + Sync + 'static,
    R: Fn(Box<dyn ConnectionBox>) -> Task + Send + Sync + 'static,
{
    let cap = Arc::new(Semaphore::new(options.max_sessions));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut sessions = tokio::task::JoinSet::new();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let session = Arc::new(session);
    let refuse = Arc::new(refuse);
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            accepted = listener.accept() => {
                let (conn, peer) = match accepted {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and the like: pause, do not spin.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                match Arc::clone(&cap).try_acquire_owned() {
                    Ok(permit) => {
                        let session = Arc::clone(&session);
                        let stopping = Stopping(stop_rx.clone());
                        sessions.spawn(async move {
                            session(conn, peer, stopping).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        tracing::warn!(max_sessions = options.max_sessions, "connection refused: at the session cap");
                        let refuse = Arc::clone(&refuse);
                        sessions.spawn(async move { refuse(conn).await });
                    }
                }
            }
        }
    }
    tracing::info!(
        in_flight = sessions.len(),
        "stopping: draining the sessions in flight"
    );
    let _ = stop_tx.send(true);
    // While draining, new connections are answered by `refuse` until the sessions end.
    let drained = async {
        loop {
            tokio::select! {
                next = sessions.join_next() => if next.is_none() { break },
                accepted = listener.accept() => if let Ok((conn, _)) = accepted {
                    let refuse = Arc::clone(&refuse);
                    tokio::spawn(async move { refuse(conn).await });
                }
            }
        }
    };
    if tokio::time::timeout(options.drain, drained).await.is_err() {
        tracing::warn!("the drain period ended with sessions still open; closing them");
    }
    drop(listener);
    tracing::info!("stopped");
    Ok(())
}
