//! `make bench-e2e`: driftline end to end against the I/O limit and the Python a user would
//! write instead, all in one invocation (see BENCHMARKS.md for the table and how to read it).
//!
//! On the embedded MockCluster (64 partitions; the broker that is not the bottleneck here),
//! with the same preloaded events (the demo's: an id, a timestamp, 16 floats, ~350 bytes):
//!   (a) passthrough: rdkafka consume → produce, driftline's client settings;
//!   (b) driftline, drift off;  (c) driftline, drift on (every column, PSI, KL, KS);
//!   (d) Python: confluent-kafka + orjson + numpy + onnxruntime (`benches/e2e_python.py`);
//!   (e) driftline's operators in memory;  (f) the same work in Python in memory.
//! Then (a) and (b) on tansu, latency at half of (b)'s rate on a live feed, and RSS over a long
//! live stream (on the MockCluster at a quarter of the live maximum, on tansu at 10 000/s,
//! unless `--rss-rate`; flagged when the run did not keep up with its feed). Every run is a child
//! process (its own peak RSS and CPU time), repeated. (b) runs again with each count of
//! `--decode-sweep` (1 and 2 by default) decode threads, side by side in each repeat.
//!
//! The children take `DRIFTLINE__…` variables of this process's environment over the demo's
//! settings: `DRIFTLINE__MODEL__PATH`, `DRIFTLINE__BATCH__MAX_ROWS` and
//! `DRIFTLINE__RUNTIME__EXECUTION_PROVIDER` run (b) and (c) with another model, batch or provider
//! (benches/gpu/run-kafka-on-device.sh does, on a GPU machine).
//!
//!     bench_e2e [--events N] [--repeats R] [--tansu-events N] [--rss-events N] [--rss-rate R] [--rss-mode driftline|passthrough]
//!               [--rss-broker mock|tansu] [--runs abcdefl] [--decode-sweep 1,2,4]
mod child;
mod memory;
mod report;
mod spawn;

use std::time::Duration;

use anyhow::{bail, Context};
use driftline::cli::gen::{self, GenOptions};
use driftline::kafka::embedded::EmbeddedBroker;
use driftline_tests::{create_topics, Tansu};
use report::{Measured, Row};
use spawn::{python, spawn_child, spawn_child_until, spawn_child_with};

struct Options {
    events: u64,
    repeats: usize,
    tansu_events: u64,
    rss_events: u64,
    /// The live feed's rate for the RSS run; 0: a quarter of the live maximum on the mock,
    /// 10 000/s on tansu.
    rss_rate: u64,
    /// What the RSS run streams through: `driftline`, or `passthrough` to see the broker and
    /// feed alone over the same long run.
    rss_mode: String,
    /// Where the RSS run streams: `mock` (the MockCluster) or `tansu`.
    rss_broker: String,
    /// Which of the MockCluster runs a..f to do, and `l` for the live-feed latency and RSS runs
    /// (all by default; `--runs b` for profiling).
    runs: String,
    /// (b) again with each of these `pipeline.decode_threads`, side by side in each repeat.
    decode_sweep: Vec<usize>,
    /// Where to write each row's median events/s as JSON (for scripts), if anywhere.
    json: Option<std::path::PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("child") {
        return child::run(child::ChildArgs::parse(&args[1..])?);
    }
    let mut o = Options {
        events: 500_000,
        repeats: 3,
        tansu_events: 200_000,
        rss_events: 10_000_000,
        runs: "abcdefl".into(),
        rss_rate: 0,
        rss_mode: "driftline".to_string(),
        rss_broker: "mock".to_string(),
        decode_sweep: vec![1, 2],
        json: None,
    };
    for pair in args.chunks(2) {
        let value = || -> anyhow::Result<u64> {
            pair.get(1)
                .context("a flag needs a value")?
                .parse()
                .context("a number")
        };
        match pair[0].as_str() {
            "--events" => o.events = value()?,
            "--repeats" => o.repeats = value()? as usize,
            "--tansu-events" => o.tansu_events = value()?,
            "--rss-events" => o.rss_events = value()?,
            "--rss-rate" => o.rss_rate = value()?,
            "--rss-mode" => o.rss_mode = pair.get(1).context("--rss-mode needs a mode")?.clone(),
            "--rss-broker" => {
                o.rss_broker = pair.get(1).context("--rss-broker needs a broker")?.clone()
            }
            "--runs" => o.runs = pair.get(1).context("--runs needs letters")?.clone(),
            "--json" => o.json = Some(pair.get(1).context("--json needs a file")?.into()),
            "--decode-sweep" => {
                let list = pair.get(1).context("--decode-sweep needs counts")?;
                o.decode_sweep = (list.split(',').filter(|c| !c.is_empty()))
                    .map(|c| c.parse().context("--decode-sweep: counts like 1,2,4"))
                    .collect::<anyhow::Result<_>>()?;
            }
            other => bail!("unknown flag {other}"),
        }
    }
    anyhow::ensure!(
        ["driftline", "passthrough"].contains(&o.rss_mode.as_str()),
        "--rss-mode is driftline or passthrough, not {}",
        o.rss_mode
    );
    anyhow::ensure!(
        ["mock", "tansu"].contains(&o.rss_broker.as_str()),
        "--rss-broker is mock or tansu, not {}",
        o.rss_broker
    );
    anyhow::ensure!(
        o.rss_broker != "tansu" || Tansu::binary().is_file(),
        "--rss-broker tansu: no tansu at {} (make bench-e2e installs it; TANSU_BIN overrides)",
        Tansu::binary().display()
    );
    drive(&o)
}

/// A unique name per run, so that runs share the input but never a group or an output topic.
pub(crate) fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}", N.fetch_add(1, Ordering::Relaxed))
}

fn drive(o: &Options) -> anyhow::Result<()> {
    let machine = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(str::to_string)
        })
        .unwrap_or_default();
    println!(
        "# driftline end-to-end benchmark\n\nmachine: {} cores, {}\n",
        num_cpus(),
        machine.trim_start_matches("model name\t: ")
    );
    let broker = EmbeddedBroker::start(1)?;
    let b = broker.bootstrap_servers().to_string();
    let topics = |name: &str| -> anyhow::Result<()> {
        for suffix in ["", ".dlq", ".drift", ".alerts"] {
            broker.create_topic(&format!("{name}{suffix}"), 64)?;
        }
        Ok(())
    };
    broker.create_topic("in", 64)?;
    eprintln!(
        "preloading {} events into the MockCluster (64 partitions)…",
        o.events
    );
    preload(&b, "in", o.events)?;

    let names = [
        ("(a) passthrough, MockCluster", "passthrough", false),
        ("(b) driftline, drift off, MockCluster", "driftline", false),
        ("(c) driftline, drift on, MockCluster", "driftline", true),
    ];
    let mut rows: Vec<Row> = names
        .iter()
        .map(|(name, _, _)| *name)
        .chain([
            "(d) Python confluent-kafka + orjson + onnxruntime, MockCluster",
            "(e) driftline operators in memory",
            "(f) Python in memory",
        ])
        .map(str::to_string)
        .chain(
            (o.decode_sweep.iter())
                .map(|n| format!("(b) driftline, drift off, {n} decode threads, MockCluster")),
        )
        .map(|name| Row {
            name,
            runs: Vec::new(),
        })
        .collect();
    for repeat in 0..o.repeats {
        eprintln!("repeat {}/{}", repeat + 1, o.repeats);
        for (i, (_, mode, drift)) in names.iter().enumerate() {
            if !o.runs.contains(['a', 'b', 'c'][i]) {
                continue;
            }
            let out = unique("out");
            topics(&out)?;
            rows[i]
                .runs
                .push(spawn_child(mode, &b, "in", &out, o.events, *drift)?);
            if i != 1 {
                continue;
            }
            // (b) again with each decode thread count, right after it ((b) itself has "auto").
            for (j, n) in o.decode_sweep.iter().enumerate() {
                let out = unique("out");
                topics(&out)?;
                let threads = [("DRIFTLINE__PIPELINE__DECODE_THREADS", n.to_string())];
                let env: Vec<(&str, &str)> =
                    threads.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let run = spawn_child_with(mode, &b, "in", &out, o.events, false, &env)?;
                rows[6 + j].runs.push(run);
            }
        }
        if o.runs.contains('d') {
            let out = unique("py-out");
            topics(&out)?;
            let group = unique("py");
            let events = o.events.to_string();
            let dlq = format!("{out}.dlq");
            rows[3].runs.push(python(&[
                "--bootstrap",
                &b,
                "--input",
                "in",
                "--output",
                &out,
                "--dlq",
                &dlq,
                "--group",
                &group,
                "--events",
                &events,
            ])?);
        }
        if o.runs.contains('e') {
            let memory = spawn_child("memory", "-", "-", "-", o.events, false)?;
            rows[4].runs.push(memory);
        }
        if o.runs.contains('f') {
            let events = o.events.min(200_000).to_string();
            rows[5].runs.push(python(&["--memory", &events])?);
        }
    }
    if o.tansu_events > 0 && Tansu::binary().is_file() {
        let t = Tansu::start();
        let topics = [("in", 6), ("out-a", 6), ("out-b", 6), ("out-b.dlq", 6)];
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(create_topics(&t.bootstrap, &topics));
        eprintln!("preloading {} events into tansu…", o.tansu_events);
        preload(&t.bootstrap, "in", o.tansu_events)?;
        let mut a = Row {
            name: "(a) passthrough, tansu".into(),
            runs: Vec::new(),
        };
        let mut bb = Row {
            name: "(b) driftline, drift off, tansu".into(),
            runs: Vec::new(),
        };
        for _ in 0..o.repeats {
            let n = o.tansu_events;
            a.runs.push(spawn_child(
                "passthrough",
                &t.bootstrap,
                "in",
                "out-a",
                n,
                false,
            )?);
            bb.runs.push(spawn_child(
                "driftline",
                &t.bootstrap,
                "in",
                "out-b",
                n,
                false,
            )?);
        }
        rows.push(a);
        rows.push(bb);
    } else if o.tansu_events > 0 {
        eprintln!(
            "tansu runs skipped: no tansu at {} (make bench-e2e installs it)",
            Tansu::binary().display()
        );
    }

    // Latency on a live feed, at half load and at the demo's 20k/s, for driftline and, as the
    // broker's own floor, the passthrough. The feed's producer shares the two cores, so the
    // maximum is measured live first (offered at (b)'s preloaded rate), then half of it.
    let mut live_rows: Vec<Row> = Vec::new();
    let mut rss = Row {
        name: String::new(),
        runs: Vec::new(),
    };
    let mut rss_check: Option<LiveCheck> = None;
    if o.runs.contains('b') && o.runs.contains('l') {
        let offered = rows[1].median_rate() as u64;
        let mock = LiveBroker {
            bootstrap: &b,
            create_topic: &|topic, partitions| Ok(broker.create_topic(topic, partitions)?),
            partitions: 64,
        };
        let live_max = live_run(&mock, "driftline", offered, offered * 5)?
            .measured
            .rate();
        let half = (live_max / 2.0) as u64;
        for (rate, label) in [
            (half, format!("half load (live maximum {live_max:.0}/s)")),
            (20_000, "the demo's rate".to_string()),
        ] {
            for (mode, who) in [
                ("driftline", "(b) driftline"),
                ("passthrough", "(a) passthrough"),
            ] {
                let mut row = Row {
                    name: format!("{who}, live feed at {rate}/s: {label}, MockCluster"),
                    runs: Vec::new(),
                };
                for _ in 0..o.repeats {
                    row.runs
                        .push(live_run(&mock, mode, rate, rate * 8)?.measured);
                }
                live_rows.push(row);
            }
        }
        if o.rss_events > 0 {
            // The target is about leaks, so the run must be one driftline sustains from start to
            // end. At half load a backlog built up on this shared machine: it fills librdkafka's
            // prefetch queue towards its configured bound (64 MiB), growth by configuration, and
            // past about 0.9 M events the mock deletes input before it is read. A quarter of the
            // live maximum leaves room for the machine's noise; the run is checked either way
            // (every output, and a p99 that shows no backlog).
            // `--rss-broker tansu`: a broker that stays steady for minutes, at tansu's pace
            // (one core for tansu + sqlite caps a live run near 17k/s here).
            let on_tansu = o.rss_broker == "tansu";
            let rate = match (o.rss_rate, on_tansu) {
                (0, true) => 10_000,
                (0, false) => (live_max / 4.0) as u64,
                (rate, _) => rate,
            };
            eprintln!(
                "RSS run: {} events live at {rate}/s on {}…",
                o.rss_events, o.rss_broker
            );
            let run = if on_tansu {
                let tansu = Tansu::start();
                let admin = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                let create_topic = |topic: &str, partitions: i32| -> anyhow::Result<()> {
                    admin.block_on(create_topics(&tansu.bootstrap, &[(topic, partitions)]));
                    Ok(())
                };
                let broker = LiveBroker {
                    bootstrap: &tansu.bootstrap,
                    create_topic: &create_topic,
                    partitions: 6,
                };
                live_run(&broker, &o.rss_mode, rate, o.rss_events)?
            } else {
                live_run(&mock, &o.rss_mode, rate, o.rss_events)?
            };
            rss_check = Some(run.check);
            rss.runs.push(run.measured);
            rss.name = format!(
                "{}, {} events live at {rate}/s on {}",
                o.rss_mode, o.rss_events, o.rss_broker
            );
        }
    }
    let medians: Vec<f64> = rows.iter().map(Row::median_rate).collect();
    let rate = |i: usize| medians[i];
    let sweep: Vec<String> = (o.decode_sweep.iter().skip(1))
        .map(|n| format!("(b) {n} / {} decode threads", o.decode_sweep[0]))
        .collect();
    let mut ratios = vec![
        ("(b)/(a)", rate(1) / rate(0), 0.60),
        ("(c)/(b)", rate(2) / rate(1), 0.95),
        ("(b)/(d)", rate(1) / rate(3), 3.0),
        ("(e)/(f)", rate(4) / rate(5), 4.0),
    ];
    // No target: how far more decode threads carry (b) on this machine.
    for (j, name) in sweep.iter().enumerate() {
        ratios.push((name.as_str(), rate(7 + j) / rate(6), f64::NAN));
    }
    if let Some(path) = &o.json {
        let medians: Vec<_> = (rows.iter())
            .filter(|r| !r.runs.is_empty())
            .map(|r| serde_json::json!({"name": r.name, "median_events_per_s": r.median_rate()}))
            .collect();
        std::fs::write(path, serde_json::to_vec_pretty(&medians)?)?;
    }
    let mut all_rows = rows;
    all_rows.extend(live_rows);
    let note = "Latency of the preloaded runs is the event's time waiting in the topic, not driftline's: read it from the live-feed rows only.";
    println!("{}", report::table(&all_rows, note));
    println!("{}", report::ratio_table(&ratios));
    println!("CPU seconds by thread, last repeat:");
    let sweep_rows = 6..6 + o.decode_sweep.len();
    for r in all_rows.iter().take(3).chain(&all_rows[sweep_rows]) {
        if let Some(m) = r.runs.last() {
            println!("- {}: {}", r.name, m.threads);
        }
    }
    println!();
    println!(
        "(e) = {:.0} events/s against the target of 2 000 000.",
        rate(4)
    );
    if let (Some(m), Some(check)) = (rss.runs.first(), rss_check) {
        if !check.kept_up() {
            println!(
                "\nRSS, {}: NOT A STEADY STATE ({} of {} outputs, {} events reached the input topic, p99 {:.1} ms against {STEADY_P99_MS} ms): events waited, in the broker or in driftline (BENCH_E2E_TIMELINE=1 shows which), and a backlog in driftline grows RSS by configuration. Read the growth below with that in mind, or rerun with a lower --rss-rate.",
                rss.name,
                m.events,
                check.expected,
                check.landed,
                check.p99_ms,
            );
        }
        if let Some(levels) = report::rss_levels(&m.rss_samples) {
            let (third, last, growth) = report::level_growth(&levels);
            println!(
                "\nRSS, {}: level {third:.0} MiB after warm-up (the third tenth of the run), {last:.0} MiB in the last tenth: growth {:.1}% (target ≤ 10%); {:.0} events/s, p99 {:.1} ms.",
                rss.name,
                growth * 100.0,
                m.rate(),
                m.p99_ms.unwrap_or(f64::NAN)
            );
            let levels: Vec<String> = levels.iter().map(|l| format!("{l:.0}")).collect();
            println!(
                "RSS MiB, level (median) of each tenth of the run: {}",
                levels.join(", ")
            );
        }
        if let Some((warm, peak, growth)) = report::rss_growth(&m.rss_samples) {
            // Single samples, for comparison with runs before the level measure: the swing of an
            // allocator that returns memory counts here too.
            println!(
                "RSS single samples: {warm:.0} MiB at 20% of the run, peak after it {peak:.0} MiB ({:+.1}%)",
                growth * 100.0
            );
        }
    }
    Ok(())
}

/// Preloads `n` demo events, as fast as the producer goes.
fn preload(bootstrap: &str, topic: &str, n: u64) -> anyhow::Result<()> {
    let stop = std::sync::atomic::AtomicBool::new(false);
    let options = GenOptions {
        count: n,
        rate: 0,
        ..GenOptions::default()
    };
    let report = gen::produce(bootstrap, topic, options, &stop)?;
    anyhow::ensure!(report.produced == n, "preloaded {} of {n}", report.produced);
    Ok(())
}

/// A live run, and whether it kept up with its feed.
struct LiveRun {
    measured: Measured,
    check: LiveCheck,
}

#[derive(Debug, Clone, Copy)]
struct LiveCheck {
    expected: u64,
    /// Every event has its output. An event the mock deleted (its 5 MiB per partition) before
    /// it was read would have none. Its low watermarks say nothing here: it deletes what was
    /// read as well, once a partition is past its size.
    complete: bool,
    p99_ms: f64,
    /// Events that reached the input topic (its high watermarks): fewer than `expected` means
    /// the feed's producer, not the run, lost some.
    landed: i64,
}

/// Above this p99 the run built a backlog, and librdkafka's prefetch queue grows towards its
/// configured bound: growth by configuration, which is not what the RSS run looks for.
const STEADY_P99_MS: f64 = 2_000.0;

impl LiveCheck {
    fn kept_up(&self) -> bool {
        self.complete && self.p99_ms <= STEADY_P99_MS
    }
}

/// Where a live run streams: a bootstrap, a way to make topics, and how many partitions each.
struct LiveBroker<'a> {
    bootstrap: &'a str,
    create_topic: &'a dyn Fn(&str, i32) -> anyhow::Result<()>,
    partitions: i32,
}

/// driftline (or the passthrough) consuming a live feed at `rate` on a fresh topic.
fn live_run(
    broker: &LiveBroker<'_>,
    mode: &str,
    rate: u64,
    events: u64,
) -> anyhow::Result<LiveRun> {
    let (b, partitions) = (broker.bootstrap, broker.partitions);
    let input = unique("live");
    (broker.create_topic)(&input, partitions)?;
    let out = unique("live-out");
    for suffix in ["", ".dlq", ".drift", ".alerts"] {
        (broker.create_topic)(&format!("{out}{suffix}"), partitions)?;
    }
    let feed = {
        let (b, input) = (b.to_string(), input.clone());
        std::thread::spawn(move || {
            // Let the child join its group first, so the latency is not the join's.
            std::thread::sleep(Duration::from_secs(3));
            let stop = std::sync::atomic::AtomicBool::new(false);
            gen::produce(
                &b,
                &input,
                GenOptions {
                    count: events,
                    rate,
                    ..GenOptions::default()
                },
                &stop,
            )
        })
    };
    // Twice the feed's duration and a minute, and never less than the usual ten.
    let limit_s = (2 * events / rate.max(1) + 60).max(600);
    let measured = spawn_child_until(mode, b, &input, &out, events, false, limit_s)?;
    if measured.events < events {
        eprintln!(
            "warning: a live {mode} run ended with {} of {events} outputs (fell behind beyond the mock's retention?)",
            measured.events
        );
    }
    feed.join()
        .map_err(|_| anyhow::anyhow!("feed panicked"))??;
    let check = LiveCheck {
        expected: events,
        complete: measured.events >= events,
        p99_ms: measured.p99_ms.unwrap_or(f64::INFINITY),
        landed: driftline_tests::topic_size(b, &input, partitions),
    };
    Ok(LiveRun { measured, check })
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
