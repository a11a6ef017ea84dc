//! The `driftline` binary: parses the command line and hands over to the library.
use std::process::ExitCode;

use clap::Parser;
use driftline::cli::args::{Cli, Command};
use driftline::cli::{demo, gen, validate};
use driftline::{telemetry, Pipeline, Settings};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) if args.labeled.is_some() => return gate_command(args),
        Command::Validate(args) => return validate_command(args.config.as_deref()),
        Command::Run(args) => run_command(args.config.as_deref()),
        Command::Aggregate(args) => aggregate_command(args.config.as_deref()),
        Command::Gen(args) => gen_command(args),
        Command::Drift(args) => return drift_command(args),
        Command::Profile(args) => profile_command(args),
        Command::Batch(args) => batch_command(args),
        Command::Report(args) => report_command(&args),
        Command::Demo(args) => runtime().and_then(|rt| {
            rt.block_on(demo::run(demo::DemoOptions {
                config: args.config,
                bootstrap: args.bootstrap,
                events: args.events,
                rate: args.rate,
                partitions: args.partitions,
                malformed_every: args.malformed_every,
                drift_after: (!args.no_drift).then_some(args.drift_after),
                seed: args.seed,
                labels: !args.no_labels,
            }))
            .map(|_| ())
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Telemetry first (its exporters must outlive the runtime and flush after it), then the
/// pipeline on a multi-threaded runtime.
fn run_command(config: Option<&std::path::Path>) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    let _traces = telemetry::init_with_traces(&settings)?;
    runtime()?.block_on(run(settings))
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let grace = std::time::Duration::from_millis(settings.pipeline.shutdown_grace_ms);
    // Listening before the model loads: a SIGTERM during startup (a rollout that changes its
    // mind) is then a clean stop once the pipeline is up, not death by the signal's default.
    let signals = ShutdownSignals::install();
    let pipeline = Pipeline::build(settings)?;
    let shutdown = async move {
        signals.wait().await;
        grace_watchdog(grace);
    };
    let summary = pipeline.run(shutdown).await?;
    tracing::info!(?summary, "stopped");
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

/// The grace period is a promise to the orchestrator: if draining takes longer, exit anyway
/// (non-zero; what was not acknowledged is not committed and will be redelivered).
fn grace_watchdog(grace: std::time::Duration) {
    let _ = std::thread::Builder::new()
        .name("driftline-grace".into())
        .spawn(move || {
            std::thread::sleep(grace);
            tracing::error!(
                grace_ms = grace.as_millis() as u64,
                "shutdown grace period exceeded; exiting without finishing the drain"
            );
            std::process::exit(3);
        });
}

/// SIGINT and SIGTERM, listened for from [`ShutdownSignals::install`] on.
struct ShutdownSignals {
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl ShutdownSignals {
    fn install() -> Self {
        use tokio::signal::unix::{signal, SignalKind};
        let streams = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => Some((term, int)),
            _ => None,
        };
        ShutdownSignals { streams }
    }

    /// Resolves on the first SIGINT or SIGTERM since [`ShutdownSignals::install`].
    async fn wait(self) {
        match self.streams {
            Some((mut term, mut int)) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM: draining"),
                    _ = int.recv() => tracing::info!("SIGINT: draining"),
                }
            }
            None => {
                tracing::warn!("cannot install signal handlers; waiting for Ctrl-C");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

fn validate_command(config: Option<&std::path::Path>) -> ExitCode {
    let v = validate::validate(config);
    for w in &v.warnings {
        eprintln!("warning: {w}");
    }
    if v.problems.is_empty() {
        let s = v.settings.as_ref();
        match s.filter(|s| !s.has_model()) {
            Some(s) => println!(
                "ok: config and schema ({} features) agree; no model: drift watches the features alone",
                s.schema.features.len()
            ),
            None => println!(
                "ok: config, model {} and schema ({} features) agree; execution provider {}",
                s.map_or("?".into(), |s| s.model.path.display().to_string()),
                s.map_or(0, |s| s.schema.features.len()),
                v.provider.unwrap_or("?")
            ),
        }
        if let Some(threads) = &v.threads {
            println!("threads on this machine: {threads}");
        }
        ExitCode::SUCCESS
    } else {
        eprintln!("{} problem(s):", v.problems.len());
        for p in &v.problems {
            eprintln!("  - {p}");
        }
        ExitCode::FAILURE
    }
}

fn profile_command(args: driftline::cli::args::ProfileArgs) -> anyhow::Result<()> {
    let settings = Settings::load(args.config.as_deref())?;
    telemetry::init(&settings.log);
    let run = driftline::cli::profile::build_profile(&settings, &args.input)?;
    std::fs::write(&args.out, run.profile.to_json())?;
    println!(
        "profile {} of {} events ({} skipped as invalid), {} columns, written to {}",
        run.profile.id,
        run.profile.n_events,
        run.rejected,
        run.profile.columns.len(),
        args.out.display()
    );
    Ok(())
}

/// The quality gate: exit 0 when the candidate passes, 1 when it fails, 2 on an error.
fn gate_command(args: driftline::cli::args::ValidateArgs) -> ExitCode {
    use driftline::cli::gate::{self as quality_gate, GateMetric, GateRequest};
    let run = || -> anyhow::Result<quality_gate::GateReport> {
        let settings = Settings::load(args.config.as_deref())?;
        telemetry::init(&settings.log);
        let metric = GateMetric::parse(&args.metric)?;
        let bound = match (metric, args.min, args.max) {
            (GateMetric::Rmse, Some(_), _) => anyhow::bail!("rmse: lower is better, use --max"),
            (GateMetric::Rmse, None, max) => max,
            (_, min, None) => min,
            (_, _, Some(_)) => anyhow::bail!("{}: higher is better, use --min", args.metric),
        };
        let request = GateRequest {
            model: args
                .model
                .clone()
                .unwrap_or_else(|| settings.model.path.clone()),
            labeled: args.labeled.clone().unwrap_or_default(),
            metric,
            bound,
            baseline: args.baseline.clone(),
            max_drop: args.max_drop,
            label_field: args.label_field.clone(),
            output: args.output.clone(),
        };
        quality_gate::run(&settings, &request)
    };
    match run() {
        Ok(report) => {
            println!("{}", serde_json::to_string(&report).unwrap_or_default());
            for why in &report.failures {
                eprintln!("gate failed: {why}");
            }
            if report.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `driftline aggregate`: the merge loop on a thread of its own, stopped by SIGINT/SIGTERM.
fn aggregate_command(config: Option<&std::path::Path>) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    telemetry::init(&settings.log);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rt = runtime()?;
    let summary = rt.block_on(async {
        let signals = ShutdownSignals::install();
        let loop_stop = std::sync::Arc::clone(&stop);
        let merging =
            tokio::task::spawn_blocking(move || driftline::aggregate::run(&settings, &loop_stop));
        tokio::pin!(merging);
        tokio::select! {
            done = &mut merging => done,
            _ = signals.wait() => {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                merging.await
            }
        }
    })??;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

fn batch_command(args: driftline::cli::args::BatchArgs) -> anyhow::Result<()> {
    let settings = Settings::load(args.config.as_deref())?;
    telemetry::init(&settings.log);
    let outcome =
        driftline::cli::batch::run(&settings, &args.input, &args.output, args.max_rejected)?;
    println!("{}", serde_json::to_string(&outcome)?);
    outcome.check(&args.input)
}

fn drift_command(args: driftline::cli::args::DriftArgs) -> ExitCode {
    let request = driftline::cli::drift::DriftRequest {
        reference: &args.reference,
        current: &args.current,
        column: args.column.as_deref(),
        binning: &args.binning,
        bins: args.bins,
        psi_threshold: args.psi_threshold,
        kl_threshold: args.kl_threshold,
    };
    let comparison = match driftline::cli::drift::compare(&request) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match args.format.as_str() {
        "json" => match serde_json::to_string(&comparison) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
        "table" => print!("{}", driftline::cli::drift::table(&comparison)),
        "html" => print!(
            "{}",
            driftline::cli::report::comparison_page(&comparison, &request)
        ),
        other => {
            eprintln!("error: --format must be json, table or html, not {other}");
            return ExitCode::FAILURE;
        }
    }
    let drifted = comparison.psi.drift
        || comparison.kl.drift
        || comparison.ks.as_ref().is_some_and(|k| k.pvalue <= 0.05);
    if args.fail_on_drift && drifted {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

fn report_command(args: &driftline::cli::args::ReportArgs) -> anyhow::Result<()> {
    let run = driftline::cli::report::run(args)?;
    println!(
        "drift report of {} columns, up to {} windows each, {} alerts open: {} ({} bytes)",
        run.columns,
        run.windows,
        run.open_alerts,
        args.out.display(),
        run.bytes
    );
    Ok(())
}

fn gen_command(args: driftline::cli::args::GenArgs) -> anyhow::Result<()> {
    let options = gen::GenOptions {
        count: args.count,
        rate: args.rate,
        devices: args.devices,
        drift_after: args.drift_after,
        drift_sensor: args.drift_sensor,
        drift_shift_std: args.drift_shift_std,
        malformed_every: args.malformed_every,
        seed: args.seed,
        ..gen::GenOptions::default()
    };
    if let Some(out) = &args.out {
        let mut generator = gen::EventGenerator::new(options, driftline::clock::now_ms())?;
        let (mut file, mut buf) = (
            std::io::BufWriter::new(std::fs::File::create(out)?),
            Vec::new(),
        );
        for i in 0..args.count {
            generator.event(i, &mut buf);
            std::io::Write::write_all(&mut file, &buf)?;
            std::io::Write::write_all(&mut file, b"\n")?;
        }
        std::io::Write::flush(&mut file)?;
        println!("wrote {} events to {}", args.count, out.display());
        return Ok(());
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    let report = gen::produce(&args.bootstrap, &args.topic, options, &stop)?;
    println!(
        "produced {} events ({} malformed) to {}",
        report.produced, report.malformed, args.topic
    );
    Ok(())
}
