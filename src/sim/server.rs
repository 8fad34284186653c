//! Serves a simulator router on `127.0.0.1:0` over connections the fault layer can kill.
//!
//! `FaultAction::Drop` must look like a broken network to the client, not like an HTTP status.
//! axum's own `TcpListener` gives handlers no way to reach the socket, so every accepted stream is
//! wrapped in [`KillableStream`] and its [`ConnectionKill`] switch is handed to handlers as
//! `ConnectInfo`. Pulling the switch makes every later read/write fail and sets `SO_LINGER` to
//! zero, so hyper abandons the response and the kernel answers with a TCP reset.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::middleware;
use axum::serve::{IncomingStream, Listener};
use axum::Router;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::faults::{self, ErrorResponder, Faults};
use super::recorder::{self, RequestLog};

/// A simulator started by [`serve_simulator`]: where it listens and the handles tests use to
/// inject faults and read the requests it received.
#[derive(Clone)]
pub(crate) struct RunningSimulator {
    addr: SocketAddr,
    pub(crate) faults: Faults,
    pub(crate) requests: RequestLog,
}

impl RunningSimulator {
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Wraps a simulator's `api` in the layers every simulator shares and serves it.
///
/// The recorder is the outermost layer so that it also logs requests the fault layer answers or
/// drops; `error_response` renders injected error statuses in the simulated API's own error shape.
pub(crate) async fn serve_simulator(
    api: Router,
    error_response: ErrorResponder,
) -> RunningSimulator {
    let faults = Faults::default();
    let requests = RequestLog::default();
    let router = api
        .layer(middleware::from_fn_with_state(
            (faults.clone(), error_response),
            faults::layer,
        ))
        .layer(middleware::from_fn_with_state(
            requests.clone(),
            recorder::layer,
        ));
    let addr = spawn(router).await;
    RunningSimulator {
        addr,
        faults,
        requests,
    }
}

/// Binds `127.0.0.1:0`, serves `router` on a background task and returns the bound address.
async fn spawn(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding 127.0.0.1:0 for a simulator");
    let addr = listener.local_addr().expect("simulator listener address");
    let service = router.into_make_service_with_connect_info::<ConnectionKill>();
    tokio::spawn(async move {
        // Only ends when the runtime shuts down; accept errors are retried inside `accept`.
        let _ = axum::serve(KillableListener(listener), service).await;
    });
    addr
}

struct KillableListener(TcpListener);

impl Listener for KillableListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = Listener::accept(&mut self.0).await;
        let stream = KillableStream {
            inner: stream,
            kill: ConnectionKill::default(),
        };
        (stream, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// Per-connection switch that aborts the TCP connection it belongs to.
#[derive(Clone, Default)]
pub(crate) struct ConnectionKill(Arc<AtomicBool>);

impl ConnectionKill {
    pub(crate) fn pull(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn pulled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl Connected<IncomingStream<'_, KillableListener>> for ConnectionKill {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        stream.io().kill.clone()
    }
}

struct KillableStream {
    inner: TcpStream,
    kill: ConnectionKill,
}

impl KillableStream {
    fn check_alive(&self) -> io::Result<()> {
        if !self.kill.pulled() {
            return Ok(());
        }
        // Zero linger turns the close into a RST, the loudest "connection broken" there is.
        let _ = self.inner.set_zero_linger();
        Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "simulated connection drop",
        ))
    }
}

impl AsyncRead for KillableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check_alive()?;
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check_alive()?;
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check_alive()?;
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check_alive()?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check_alive()?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}
