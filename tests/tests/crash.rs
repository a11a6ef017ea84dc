//! kill -9 mid-stream, and broker outages mid-stream, with the real binary: whatever the moment
//! of the fault, every input offset ends with at least one output (prediction or dead letter).
//! Duplicates are allowed by at-least-once, and counted per fault. With two instances in the
//! group, each kill also moves partitions. `make test` runs the short versions; `make soak` the
//! 1-million-event ones (`cargo test --release --test crash -- --ignored`).
//!
//! The short runs use the embedded broker (librdkafka's MockCluster, in this test process;
//! driftline still runs as child processes over TCP), the soak runs tansu. tansu 0.6's group
//! coordinator made the short runs flaky on a loaded 2-core machine, never by a loss: it did not
//! expire a killed member (its partitions were never consumed again), once kept a member that a
//! consumer had left by rejoining as the group's leader (no rebalance completed again), and
//! after a restart of tansu never assigned the consumer again. Kafka expires a member that stops
//! heartbeating after `session.timeout.ms`, and so does the MockCluster.
use std::time::{Duration, Instant};

use driftline::cli::gen::GenOptions;
use driftline::kafka::embedded::EmbeddedBroker;
use driftline_tests::accounting::{balance, Ledger};
use driftline_tests::*;

struct CrashRun {
    events: u64,
    /// Offered rate of the live feed, events/s.
    rate: u64,
    kills: usize,
    /// The broker down and back, mid-stream (tansu: killed and restarted on its data).
    broker_restarts: usize,
    instances: usize,
    partitions: i32,
    broker: BrokerKind,
}

#[derive(Clone, Copy, PartialEq)]
enum BrokerKind {
    Tansu,
    /// The MockCluster: it keeps 5 MiB per partition, so give it enough partitions.
    Embedded,
}

/// The broker of a run, and how its topics are made.
enum Broker {
    Tansu(Tansu),
    Embedded(EmbeddedBroker),
}

impl Broker {
    async fn start(kind: BrokerKind, topics: &[(&str, i32)]) -> Broker {
        match kind {
            BrokerKind::Tansu => {
                let tansu = Tansu::start();
                create_topics(&tansu.bootstrap, topics).await;
                Broker::Tansu(tansu)
            }
            BrokerKind::Embedded => {
                let broker = EmbeddedBroker::start(1).expect("embedded broker");
                for (topic, partitions) in topics {
                    broker.create_topic(topic, *partitions).expect("topic");
                }
                Broker::Embedded(broker)
            }
        }
    }

    fn bootstrap(&self) -> String {
        match self {
            Broker::Tansu(t) => t.bootstrap.clone(),
            Broker::Embedded(e) => e.bootstrap_servers().to_string(),
        }
    }

    /// tansu: SIGKILL and restart on the same port and data. The embedded broker: down (its
    /// port refuses, in-flight requests fail) and up again, its state kept.
    fn kill_and_restart(&mut self, down: Duration) {
        match self {
            Broker::Tansu(tansu) => {
                tansu.stop();
                std::thread::sleep(down);
                tansu.restart();
            }
            Broker::Embedded(broker) => {
                broker.set_broker_up(1, false).expect("broker down");
                std::thread::sleep(down);
                broker.set_broker_up(1, true).expect("broker up");
            }
        }
    }
}

/// A small random generator: the seed is printed, and `CRASH_SEED` replays a run.
struct XorShift(u64);

impl XorShift {
    fn from_env_or_clock() -> XorShift {
        let seed = std::env::var("CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
                    | 1
            });
        println!("CRASH_SEED={seed}");
        XorShift(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in [lo, hi).
    fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (self.next() >> 11) as f64 / (1u64 << 53) as f64 * (hi - lo)
    }
}

/// Waits (bounded) until `log` has a line containing `needle`.
fn wait_for_log_line(log: &std::path::Path, needle: &str, limit: Duration) {
    let started = Instant::now();
    while started.elapsed() < limit {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(needle) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no `{needle}` in {} within {limit:?}", log.display());
}

/// An input record's (partition, offset).
type Position = (i32, i64);

/// One crash run at a time. Side by side, the three short runs put two brokers, four driftline
/// processes and three feeds on a 2-core machine at once; with a build beside them, each of
/// three runs of the binary failed (2026-12-03): the MockCluster's slow group formation, then
/// twice tansu's group coordination stalling (a consumer never reassigned after a broker
/// restart; the restarted instance left without partitions after a kill). A run should face the
/// faults it injects, not its neighbours' load.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn crash_run(run: CrashRun) {
    let _alone = ONE_AT_A_TIME.lock().await;
    let p = run.partitions;
    let mut broker = Broker::start(run.broker, &[("in", p), ("out", p), ("dlq", 1)]).await;
    let b = broker.bootstrap();
    let b = b.as_str();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut env = pipeline_env(b, "in", "out", "dlq", "crash");
    // Issue 19: more decode threads and sessions than this 2-core machine's "auto" gives, so
    // that chunks are decoded and scored out of order and put back in order under every fault.
    env.push((
        "DRIFTLINE__PIPELINE__DECODE_THREADS",
        DECODE_THREADS.to_string(),
    ));
    env.push(("DRIFTLINE__RUNTIME__SESSIONS", SESSIONS.to_string()));
    // A killed member holds its partitions until its session expires: keep that short.
    env.push((
        "DRIFTLINE__KAFKA__CONSUMER__SESSION_TIMEOUT_MS",
        "6000".into(),
    ));
    env.push((
        "DRIFTLINE__KAFKA__CONSUMER__HEARTBEAT_INTERVAL_MS",
        "1000".into(),
    ));
    // tansu holds a rebalance open until every known member rejoins or the rebalance timeout
    // (max.poll.interval.ms, 300 s by default) passes, even for a member that was killed.
    env.push((
        "DRIFTLINE__KAFKA__CONSUMER__MAX_POLL_INTERVAL_MS",
        "15000".into(),
    ));
    let mut generation = 0;
    // Each start logs to a file of its own; returns the process and its log.
    let mut start = |slot: usize| {
        generation += 1;
        let log = dir.path().join(format!("instance{slot}-{generation}.log"));
        (DriftlineProcess::start(&env, &log), log)
    };
    let (mut instances, first_logs): (Vec<DriftlineProcess>, Vec<_>) =
        (0..run.instances).map(&mut start).unzip();
    // The group forms before the feed starts: every instance holds partitions. Under load the
    // MockCluster took four rounds (14 s) to let a slow-starting second member in, refusing
    // every commit meanwhile, and the first instance redid what it had scored (36 736
    // duplicates before any fault); that is the group's start, not what a fault costs.
    for log in &first_logs {
        wait_for_log_line(log, "partitions assigned", Duration::from_secs(120));
    }
    let feed = spawn_feed(
        b,
        "in",
        GenOptions {
            count: run.events,
            rate: run.rate,
            malformed_every: 500,
            // Many devices spread the keys evenly over the partitions: the embedded broker
            // deletes what is past 5 MiB in any one of them.
            devices: 100_000,
            ..GenOptions::default()
        },
    );

    // Kill points: random fractions of the stream, as counts of outputs, plus a random delay so
    // that a kill can land anywhere in a batch's life (decode, inference, produce, commit).
    let mut rng = XorShift::from_env_or_clock();
    let faults = run.kills + run.broker_restarts;
    let mut points: Vec<i64> = (0..faults)
        .map(|_| (rng.between(0.05, 0.9) * run.events as f64) as i64)
        .collect();
    points.sort_unstable();
    // Which points restart the broker: a random choice of broker_restarts among them.
    let mut broker_at = vec![false; faults];
    for slot in broker_at.iter_mut().take(run.broker_restarts) {
        *slot = true;
    }
    for i in (1..faults).rev() {
        broker_at.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    let mut kills = 0;
    // Each fault: when (wall clock, as the outputs' timestamps) and whether it was a kill.
    let mut faults_at: Vec<(i64, Fault)> = Vec::new();
    for (k, point) in points.iter().enumerate() {
        // A point is progress of the group, as inputs committed: a count of outputs would be
        // reached early by duplicates, and kills then came back to back (three at one count)
        // before a restarted instance had resumed at all.
        let reached = wait_for_committed(b, p, *point, Duration::from_secs(120));
        assert!(
            reached >= *point,
            "stalled at {reached} inputs committed before fault {k}; logs:\n{}",
            logs(dir.path())
        );
        std::thread::sleep(Duration::from_millis(rng.between(0.0, 300.0) as u64));
        if broker_at[k] {
            faults_at.push((wall_clock_ms(), Fault::BrokerRestart));
            broker.kill_and_restart(Duration::from_millis(rng.between(500.0, 3000.0) as u64));
            println!("broker restarted at {reached} inputs committed");
            continue;
        }
        let victim = kills % run.instances;
        kills += 1;
        faults_at.push((wall_clock_ms(), Fault::Kill));
        instances[victim].kill9();
        println!("kill -9 of instance {victim} at {reached} inputs committed");
        let (restarted, log) = start(victim);
        instances[victim] = restarted;
        if run.broker == BrokerKind::Tansu {
            // tansu 0.6 never expires a member that joined and died before the group's
            // rebalance completed: seen under load when the next kill landed within 0.2 s of a
            // restart, the ghost kept two of three partitions for good (Kafka and the
            // MockCluster expire it after session.timeout.ms). So on tansu the next fault waits
            // until the restarted instance holds partitions.
            wait_for_log_line(&log, "partitions assigned", Duration::from_secs(120));
        }
    }
    let produced = feed.join().expect("feed").produced;
    assert_eq!(produced, run.events);
    // Done when the group's committed offsets reach the end of every input partition: an offset
    // is committed only after the outputs of everything before it are acknowledged. (Waiting for
    // the output count to stop growing could not tell a lost input from one still pending while
    // the group waits out a killed member's session.)
    let started = Instant::now();
    let end = high_watermarks(b, "in", p);
    let committed =
        wait_for_commits_to_reach_the_end(b, "crash", "in", p, Duration::from_secs(300));
    println!(
        "committed offsets reached the end in {:?} after the feed ended",
        started.elapsed()
    );
    for (i, instance) in instances.iter_mut().enumerate() {
        let status = instance.terminate(Duration::from_secs(30));
        assert!(
            status.success(),
            "instance {i} exited with {status}; logs:\n{}",
            logs(dir.path())
        );
    }

    // The ledger needs every record still on the broker: a deleted output would count as lost.
    for topic in ["in", "out"] {
        let low = low_watermarks(b, topic, p);
        assert!(
            low.iter().all(|&l| l == 0),
            "the broker deleted records of `{topic}` (low watermarks {low:?}; the MockCluster keeps 5 MiB per partition): give the run more partitions"
        );
    }
    let ledger = balance(b, "in", run.events as usize, &["out", "dlq"]);
    println!(
        "crash: {} kills, {} broker restarts, {} instance(s): {}",
        run.kills,
        run.broker_restarts,
        run.instances,
        ledger.summary()
    );
    // Each instance's assignments and any refused commit: what the duplicates come from (shown
    // with --nocapture).
    // With RUST_LOG=info,driftline::kafka::consumer=debug the accepted commits show too.
    let needles = [
        "partitions",
        "resumed",
        "went back",
        "commit refused",
        "offsets committed",
    ];
    println!("{}", log_lines(dir.path(), &needles));
    assert_eq!(ledger.inputs, run.events as usize);
    // Lost: the group committed past it, and no output names it. Pending: not yet committed.
    let committed_at = |partition: i32| committed[partition as usize];
    let (lost, pending): (Vec<Position>, Vec<Position>) = ledger
        .lost
        .iter()
        .partition(|(partition, offset)| *offset < committed_at(*partition));
    assert!(
        lost.is_empty(),
        "{} inputs lost (committed past, without output), e.g. {:?}; committed {committed:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(
        pending.is_empty() && committed == end,
        "not lost, but still pending after 300 s: {} inputs past the committed offsets {committed:?} (end {end:?}), e.g. {:?}; logs:\n{}",
        pending.len(),
        &pending[..pending.len().min(5)],
        logs(dir.path())
    );
    assert_eq!(ledger.wrong_keys, 0);
    judge_duplicates(&run, &faults_at, &ledger);
}

/// Waits (bounded) until the group has committed at least `target` inputs over all partitions;
/// returns how many it had.
fn wait_for_committed(b: &str, partitions: i32, target: i64, limit: Duration) -> i64 {
    let started = Instant::now();
    loop {
        let committed: i64 = (committed_offsets(b, "crash", "in", partitions).iter())
            .map(|&o| o.max(0))
            .sum();
        if committed >= target || started.elapsed() > limit {
            return committed;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    Kill,
    BrokerRestart,
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The crash runs' `pipeline.decode_threads` and `runtime.sessions`.
const DECODE_THREADS: usize = 4;
const SESSIONS: usize = 2;

/// Events an instance may hold between consuming and acknowledging: the open chunk, the chunks
/// the source may have handed on and the sink not yet written (the pipeline's chunk window: a
/// full channel into decode, into inference and into the sink, `pipeline.channel_capacity` 4
/// each, one chunk per decode thread and per session, and the one being written), and the batch
/// in the producer: 21 batches of `batch.max_rows` (1024) with 4 decode threads and 2 sessions.
const IN_FLIGHT_EVENTS: usize = (1 + (3 * 4 + DECODE_THREADS + SESSIONS + 1) + 1) * 1024;

/// `auto.commit.interval.ms` (configs/default.toml).
const COMMIT_INTERVAL_S: u64 = 1;

/// Reports the duplicates each fault caused (a duplicate belongs to the last fault before it
/// was produced) and fails when a kill caused more than the commit interval explains.
///
/// A kill -9 redoes what the killed instance had output but not committed: what was
/// acknowledged since its last commit (at most the commit interval's worth, at the feed's
/// rate) and what was sent and not yet acknowledged (at most the pipeline's capacity,
/// [`IN_FLIGHT_EVENTS`]: on tansu a produce can take seconds to be acknowledged, so that part
/// is the larger one). With two instances, the kill's rebalance also revokes the survivor's
/// partitions: what it cannot drain in the revoke's bounded wait is redone by the next owner,
/// at most its own [`IN_FLIGHT_EVENTS`]. Duplicates before the first fault come from the
/// instances joining the group: each joining instance makes the others revoke, and a broker
/// that refuses the revoke's commit (the MockCluster does, during a rebalance) makes the next
/// owner redo up to a commit interval of the feed, plus what the revoke could not drain. A kill that finds nothing uncommitted
/// (kills back to back, or after the group has committed everything) costs nothing.
fn judge_duplicates(run: &CrashRun, faults_at: &[(i64, Fault)], ledger: &Ledger) {
    // Duplicates produced in (from, to].
    let between = |times: &[i64], from: i64, to: i64| -> usize {
        times.partition_point(|&t| t <= to) - times.partition_point(|&t| t <= from)
    };
    let survivors_in_flight = (run.instances - 1) * IN_FLIGHT_EVENTS;
    let kill_bound =
        (run.rate * COMMIT_INTERVAL_S) as usize + IN_FLIGHT_EVENTS + survivors_in_flight;
    let mut starts: Vec<(i64, Option<Fault>)> = vec![(i64::MIN, None)];
    starts.extend(faults_at.iter().map(|&(t, f)| (t, Some(f))));
    let mut excess = Vec::new();
    for (i, &(at, fault)) in starts.iter().enumerate() {
        let until = starts.get(i + 1).map_or(i64::MAX, |s| s.0);
        let caused = between(&ledger.duplicate_times_ms, at, until);
        let bound = match fault {
            None => {
                (run.instances - 1) * ((run.rate * COMMIT_INTERVAL_S) as usize + IN_FLIGHT_EVENTS)
            }
            Some(Fault::Kill) => kill_bound,
            Some(Fault::BrokerRestart) => usize::MAX,
        };
        let name = match fault {
            None => "before the first fault".to_string(),
            Some(f) => format!("{f:?} {i}"),
        };
        let bound_text = if bound == usize::MAX {
            "not bounded".to_string()
        } else {
            format!("bound {bound}")
        };
        println!("duplicates {name}: {caused} ({bound_text})");
        if caused > bound {
            excess.push(format!("{name}: {caused} > {bound}"));
        }
    }
    assert!(
        excess.is_empty(),
        "more duplicates than the commit interval explains: {excess:?}"
    );
}

/// Every instance's log file, in name order.
fn log_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// The lines of every instance's log that contain one of `needles`.
fn log_lines(dir: &std::path::Path, needles: &[&str]) -> String {
    let mut out = Vec::new();
    for f in log_files(dir) {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for line in text
            .lines()
            .filter(|l| needles.iter().any(|n| l.contains(n)))
        {
            let name = f.file_name().unwrap_or_default().to_string_lossy();
            out.push(format!("{name}: {line}"));
        }
    }
    out.join("\n")
}

/// The last lines of every instance's log, for a failure message.
fn logs(dir: &std::path::Path) -> String {
    log_files(dir)
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            format!("== {}\n{tail}", f.display())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_loses_nothing() {
    crash_run(CrashRun {
        events: 30_000,
        rate: 6_000,
        kills: 3,
        broker_restarts: 0,
        instances: 1,
        // On the embedded broker, as the two-instance run: under load tansu 0.6 kept a member
        // that a consumer had left (it rejoined with a new member id) as the group's leader,
        // and the group never completed a rebalance again (2026-12-03, RELIABILITY.md). The
        // tansu runs are in `make soak`.
        partitions: 8,
        broker: BrokerKind::Embedded,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_two_instances_rebalances_and_loses_nothing() {
    crash_run(CrashRun {
        events: 30_000,
        rate: 6_000,
        kills: 3,
        broker_restarts: 0,
        instances: 2,
        // On the embedded broker: tansu keeps a killed member in the group (see the top of
        // this file; seen again on 2026-12-03, with the restarted instance already assigned,
        // two of four partitions unconsumed for minutes). The MockCluster refuses a commit
        // made while a rebalance is under way (`RebalanceInProgress`), so the group's first
        // rebalance redoes about a second of the feed (6 600-6 800 duplicates), within the
        // bound before the first fault. 8 partitions, not 4: with many duplicates a
        // 4-partition output topic once passed the mock's 5 MiB per partition.
        partitions: 8,
        broker: BrokerKind::Embedded,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak: 1 million events, run by `make soak`"]
async fn soak_kill_9_five_times_in_a_million_events() {
    crash_run(CrashRun {
        events: 1_000_000,
        rate: 30_000,
        kills: 5,
        broker_restarts: 0,
        instances: 1,
        partitions: 6,
        broker: BrokerKind::Tansu,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak: 1 million events, run by `make soak`"]
async fn soak_kill_9_five_times_in_a_million_events_two_instances() {
    crash_run(CrashRun {
        events: 1_000_000,
        rate: 30_000,
        kills: 5,
        broker_restarts: 0,
        instances: 2,
        // 1M events of ~350 bytes: about 2.7 MiB per partition, under the mock's 5 MiB.
        partitions: 128,
        broker: BrokerKind::Embedded,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restarts_mid_stream_lose_nothing() {
    crash_run(CrashRun {
        events: 30_000,
        rate: 6_000,
        kills: 0,
        broker_restarts: 2,
        instances: 1,
        // The embedded broker goes down (every connection refused, in-flight requests failed)
        // and comes back with its log and group state, for 0.5-3 s. tansu restarted as a
        // process twice left the consumer unassigned for good under load (RELIABILITY.md);
        // its process restarts are in `make soak`.
        partitions: 8,
        broker: BrokerKind::Embedded,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak: 1 million events, run by `make soak`"]
async fn soak_broker_restarts_and_kills_in_a_million_events() {
    crash_run(CrashRun {
        events: 1_000_000,
        rate: 30_000,
        kills: 3,
        broker_restarts: 3,
        instances: 1,
        partitions: 6,
        broker: BrokerKind::Tansu,
    })
    .await;
}
