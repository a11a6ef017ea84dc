//! tansu + sqlite for the real-broker rows: a free loopback port, a temp dir, killed by PID.
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;

pub struct Tansu {
    child: Child,
    pub bootstrap: String,
    _dir: tempfile::TempDir,
}

impl Tansu {
    pub fn start() -> anyhow::Result<Tansu> {
        let bin = std::env::var_os("TANSU_BIN")
            .context("TANSU_BIN is not set (make bench-e2e sets it)")?;
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting tansu")?;
        let bootstrap = format!("127.0.0.1:{port}");
        let started = Instant::now();
        while std::net::TcpStream::connect(&bootstrap).is_err() {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(20),
                "tansu did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        add_header_index(&dir.path().join("tansu.db"))?;
        Ok(Tansu {
            child,
            bootstrap,
            _dir: dir,
        })
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// tansu 0.6's sqlite schema lacks an index on `header (topition, offset_id)`: once outputs
/// carry headers, every fetch scans them all (see README, "Tests and brokers").
fn add_header_index(db: &std::path::Path) -> anyhow::Result<()> {
    let script = "import sqlite3, sys, time\n\
        for _ in range(100):\n\
        \x20   try:\n\
        \x20       c = sqlite3.connect(sys.argv[1], timeout=10)\n\
        \x20       c.execute('create index if not exists header_topition_offset on header (topition, offset_id)')\n\
        \x20       c.commit(); sys.exit(0)\n\
        \x20   except sqlite3.OperationalError:\n\
        \x20       time.sleep(0.05)\n\
        sys.exit('tansu schema never appeared')\n";
    let status = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(db)
        .status()?;
    anyhow::ensure!(status.success(), "could not index tansu's headers");
    Ok(())
}

pub fn create_topics(bootstrap: &str, topics: &[&str]) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| NewTopic::new(t, 6, TopicReplication::Fixed(1)))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for r in runtime.block_on(admin.create_topics(
        &new,
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
    ))? {
        r.map_err(|(t, e)| anyhow::anyhow!("creating {t}: {e}"))?;
    }
    Ok(())
}
