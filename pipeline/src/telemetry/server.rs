//! The health and metrics server: `GET /healthz`, `/readyz` and `/metrics` over plain HTTP/1.1,
//! with drift on the live drift page `GET /drift` and its data `GET /drift.json`, and, when
//! `health.admin` is on, `POST /admin/reload` (a [`Reload`], implemented by `stages::reload`).
//!
//! Probes and scrapes are a few requests a second, so one thread answering one connection at a
//! time is enough, and it keeps an HTTP framework out of the binary. Each connection gets a
//! short read timeout so a slow or silent client cannot hold the server.
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;

use crate::models::identity::ModelIdentity;
use crate::report::live::DriftBoard;
use crate::telemetry::health::HealthState;
use crate::telemetry::otel::MetricsExporter;

/// What `POST /admin/reload` asks for. The server knows nothing of the stages; the model reloader
/// implements this and is handed in at startup.
pub trait Reload: Send + Sync {
    /// Reloads the models; the new serving model's identity, or why the old ones stay.
    fn reload(&self, cause: &str) -> Result<ModelIdentity, String>;
}

pub struct HealthServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HealthServer {
    /// Binds now (a taken port fails at startup, not later) and serves on a thread.
    pub fn start(
        listen: &str,
        health: Arc<HealthState>,
        exporter: Arc<MetricsExporter>,
        admin: Option<Arc<dyn Reload>>,
        drift: Option<Arc<DriftBoard>>,
    ) -> anyhow::Result<HealthServer> {
        let listener = TcpListener::bind(listen)
            .with_context(|| format!("binding the health server to {listen}"))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("driftline-health".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if thread_stop.load(Ordering::Relaxed) {
                        break;
                    }
                    match stream {
                        Ok(stream) => {
                            let serving = Serving {
                                health: &health,
                                exporter: &exporter,
                                admin: admin.as_deref(),
                                drift: drift.as_deref(),
                            };
                            if let Err(e) = answer(stream, &serving) {
                                tracing::debug!(error = %e, "health request");
                            }
                        }
                        Err(e) => tracing::debug!(error = %e, "health accept"),
                    }
                }
            })
            .context("starting the health server")?;
        tracing::info!(%addr, "health server: /healthz /readyz /metrics /drift");
        Ok(HealthServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for HealthServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the blocking accept so the thread sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the server answers from.
struct Serving<'a> {
    health: &'a HealthState,
    exporter: &'a MetricsExporter,
    admin: Option<&'a dyn Reload>,
    drift: Option<&'a DriftBoard>,
}

fn answer(stream: TcpStream, serving: &Serving<'_>) -> std::io::Result<()> {
    let Serving {
        health,
        exporter,
        admin,
        drift,
    } = *serving;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Read (and ignore) the headers, so the client sees its request consumed.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET" | "HEAD", "/healthz") => match health.liveness() {
            Ok(()) => (200, "text/plain", "ok\n".to_string()),
            Err(why) => (503, "text/plain", format!("not alive: {why}\n")),
        },
        ("GET" | "HEAD", "/readyz") => match health.readiness() {
            Ok(()) => (200, "text/plain", "ready\n".to_string()),
            Err(why) => (
                503,
                "text/plain",
                format!("not ready: {}\n", why.join("; ")),
            ),
        },
        ("GET" | "HEAD", "/metrics") => (
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            exporter.prometheus_text(),
        ),
        ("GET" | "HEAD", "/drift") => match drift {
            Some(board) => (200, "text/html; charset=utf-8", board.page()),
            None => (404, "text/plain", "drift is off (drift.enabled)\n".into()),
        },
        ("GET" | "HEAD", "/drift.json") => match drift {
            Some(board) => (
                200,
                "application/json",
                serde_json::to_string(&board.snapshot()).unwrap_or_default() + "\n",
            ),
            None => (404, "text/plain", "drift is off (drift.enabled)\n".into()),
        },
        ("POST", "/admin/reload") => match admin {
            Some(reloader) => match reloader.reload("POST /admin/reload") {
                Ok(identity) => (
                    200,
                    "application/json",
                    serde_json::to_string(&identity).unwrap_or_default() + "\n",
                ),
                Err(why) => (
                    500,
                    "text/plain",
                    format!("reload refused, the serving model stays: {why}\n"),
                ),
            },
            None => (
                404,
                "text/plain",
                "admin endpoints are off (health.admin)\n".into(),
            ),
        },
        ("GET" | "HEAD", _) => (
            404,
            "text/plain",
            "try /healthz, /readyz, /metrics, /drift or /drift.json\n".into(),
        ),
        _ => (405, "text/plain", "GET, or POST /admin/reload\n".into()),
    };
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        _ => "Service Unavailable",
    };
    let mut out = &stream;
    write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        out.write_all(body.as_bytes())?;
    }
    out.flush()
}
