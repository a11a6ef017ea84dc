//! Runs one measured child (this binary in `child` mode, or the Python baseline) and reads its
//! result: its JSON line, plus its peak RSS and CPU time.
use std::io::Read;
use std::process::{Command, Stdio};

use anyhow::Context;

use crate::report::Measured;
use crate::unique;

/// Runs this binary as `child MODE …` and measures it; the child gives up after 600 s.
pub fn spawn_child(
    mode: &str,
    b: &str,
    input: &str,
    output: &str,
    events: u64,
    drift: bool,
) -> anyhow::Result<Measured> {
    spawn_child_until(mode, b, input, output, events, drift, 600)
}

/// [`spawn_child`] with settings of its own: `DRIFTLINE__…` variables the child applies over
/// the demo's settings (see [`crate::child::settings`]).
pub fn spawn_child_with(
    mode: &str,
    b: &str,
    input: &str,
    output: &str,
    events: u64,
    drift: bool,
    env: &[(&str, &str)],
) -> anyhow::Result<Measured> {
    let mut command = child_command(mode, b, input, output, events, drift, 600)?;
    measure(command.envs(env.iter().copied()))
}

/// [`spawn_child`] with the child's time limit in seconds.
pub fn spawn_child_until(
    mode: &str,
    b: &str,
    input: &str,
    output: &str,
    events: u64,
    drift: bool,
    limit_s: u64,
) -> anyhow::Result<Measured> {
    measure(&mut child_command(
        mode, b, input, output, events, drift, limit_s,
    )?)
}

/// `bench_e2e child MODE …`: one run, in a group of its own.
fn child_command(
    mode: &str,
    b: &str,
    input: &str,
    output: &str,
    events: u64,
    drift: bool,
    limit_s: u64,
) -> anyhow::Result<Command> {
    let group = unique("group");
    let args = [
        mode,
        b,
        input,
        output,
        &group,
        &events.to_string(),
        if drift { "drift" } else { "plain" },
        &limit_s.to_string(),
    ];
    let mut command = Command::new(std::env::current_exe()?);
    command.arg("child").args(args);
    Ok(command)
}

/// Runs `benches/e2e_python.py` with the venv's Python and measures it.
pub fn python(args: &[&str]) -> anyhow::Result<Measured> {
    let root = driftline_benches::repo_path("");
    let python = root.join(".venv/bin/python");
    let features: Vec<String> = driftline_benches::sensors()
        .into_iter()
        .map(|s| s.name)
        .collect();
    measure(
        Command::new(python)
            .arg(root.join("benches/e2e_python.py"))
            .args([
                "--model",
                &root
                    .join("models/anomaly_classifier.onnx")
                    .display()
                    .to_string(),
            ])
            .args(["--features", &features.join(",")])
            .args(args),
    )
}

/// Spawns, reads its one JSON line, and reaps it with wait4 for its peak RSS and CPU time.
fn measure(command: &mut Command) -> anyhow::Result<Measured> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("spawning a run")?;
    let mut out = String::new();
    child
        .stdout
        .take()
        .context("stdout")?
        .read_to_string(&mut out)?;
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 reaps our own child by its PID.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    anyhow::ensure!(
        pid > 0 && status == 0,
        "run failed (status {status}): {out}"
    );
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap_or(""))
        .with_context(|| format!("run output: {out}"))?;
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(Measured {
        events: v["events"].as_u64().unwrap_or(0),
        seconds: v["seconds"].as_f64().unwrap_or(0.0),
        p50_ms: v["p50_ms"].as_f64(),
        p95_ms: v["p95_ms"].as_f64(),
        p99_ms: v["p99_ms"].as_f64(),
        // The run's own high-water mark (VmHWM): rusage's maxrss would count the driver's
        // memory that the child had before it exec'd.
        peak_rss_mib: v["peak_rss_bytes"]
            .as_f64()
            .map_or(usage.ru_maxrss as f64 / 1024.0, |b| b / 1048576.0),
        cpu_seconds: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        threads: v["threads"]
            .as_object()
            .map(|t| {
                t.iter()
                    .map(|(name, cpu)| format!("{name} {cpu}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default(),
        rss_samples: v["rss_samples"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
            .unwrap_or_default(),
    })
}
