//! Debian's `prometheus` server as a test process: scrapes one target every second, keeps its
//! data in a temp dir, listens on loopback, and is stopped by PID when dropped.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, http};

pub struct Prometheus {
    child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts scraping `target` (host:port, path /metrics) as job `job`.
    pub fn start(target: SocketAddr, job: &str) -> Prometheus {
        let bin = std::env::var_os("PROMETHEUS_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus"));
        assert!(
            bin.is_file(),
            "prometheus not found at {} (make test installs Debian's; or set PROMETHEUS_BIN)",
            bin.display()
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("prometheus config");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        let ready = http::wait_for(addr, "/-/ready", Duration::from_secs(30), |a| {
            a.is_some_and(|(status, _)| *status == 200)
        });
        assert!(
            ready.is_some_and(|(s, _)| s == 200),
            "prometheus never became ready"
        );
        Prometheus {
            child,
            addr,
            _dir: dir,
        }
    }

    /// An instant query through the HTTP API: each series' labels and value.
    pub fn query(&self, promql: &str) -> Vec<(serde_json::Value, f64)> {
        let path = format!("/api/v1/query?query={}", http::encode(promql));
        let Some((200, body)) = http::get(self.addr, &path) else {
            return Vec::new();
        };
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        json["data"]["result"]
            .as_array()
            .map(|series| {
                series
                    .iter()
                    .map(|s| {
                        let value = s["value"][1]
                            .as_str()
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(f64::NAN);
                        (s["metric"].clone(), value)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
