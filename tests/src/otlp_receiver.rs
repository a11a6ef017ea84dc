//! An OTLP/HTTP receiver for the tests, built from the protocol's own messages
//! (`opentelemetry-proto`): accepts `POST /v1/traces` and `POST /v1/metrics` in protobuf, keeps
//! every export request it decodes, and answers 200. Loopback only; stopped when dropped.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use prost::Message;

#[derive(Default)]
pub struct Received {
    pub traces: Vec<ExportTraceServiceRequest>,
    pub metrics: Vec<ExportMetricsServiceRequest>,
    /// Requests that were not OTLP protobuf on a known path, as "METHOD PATH: why".
    pub rejected: Vec<String>,
}

pub struct OtlpReceiver {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Received>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl OtlpReceiver {
    pub fn start() -> OtlpReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind OTLP receiver");
        let addr = listener.local_addr().expect("addr");
        let received = Arc::new(Mutex::new(Received::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (Arc::clone(&received), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(stream) = stream {
                    // Exporters keep connections alive: one thread per connection.
                    let r = Arc::clone(&r);
                    std::thread::spawn(move || serve(stream, &r));
                }
            }
        });
        OtlpReceiver {
            addr,
            received,
            stop,
            thread: Some(thread),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(stream: TcpStream, received: &Mutex<Received>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(&stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let (mut length, mut encoding) = (0usize, String::new());
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "content-encoding" => encoding = value.trim().to_string(),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let path = request_line.split_whitespace().nth(1).unwrap_or("");
        {
            let mut r = received.lock().expect("receiver lock");
            let outcome = if !encoding.is_empty() && encoding != "identity" {
                Err(format!("content-encoding {encoding}"))
            } else {
                match path {
                    "/v1/traces" => ExportTraceServiceRequest::decode(&body[..])
                        .map(|m| r.traces.push(m))
                        .map_err(|e| e.to_string()),
                    "/v1/metrics" => ExportMetricsServiceRequest::decode(&body[..])
                        .map(|m| r.metrics.push(m))
                        .map_err(|e| e.to_string()),
                    _ => Err("unknown path".into()),
                }
            };
            if let Err(why) = outcome {
                r.rejected.push(format!("{}: {why}", request_line.trim()));
            }
        }
        let mut out = &stream;
        if out
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

/// The string value of attribute `key`, if present.
pub fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match &kv.value {
            Some(AnyValue {
                value: Some(any_value::Value::StringValue(s)),
            }) => Some(s.as_str()),
            _ => None,
        })
}
