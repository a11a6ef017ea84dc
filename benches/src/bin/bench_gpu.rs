//! The GPU benchmark (issue 7, item 5; BENCHMARKS.md, "GPU"): driftline's in-process operators
//! (JSON decode → Arrow batch → ONNX Runtime → JSON prediction, `driftline_benches::in_process`)
//! against a bare ONNX Runtime session scoring one ready-made tensor in a loop, same model, same
//! execution provider, same batch size, side by side in one run.
//!
//! Rows per model and batch size:
//! - `bare ORT`: `Session::run` on a prepared `[batch, 16]` tensor, outputs extracted, nothing else;
//! - `pipeline as deployed`: the stages as the Kafka pipeline runs them (one decode thread, one
//!   inference thread, one encode thread);
//! - `pipeline (K decode, 1 inference, M encode threads)`: the same stages with K decode and M
//!   encode threads (defaults: half and a quarter of the cores);
//! - with `--inference-threads N` above 1, the same again with N inference threads, one session
//!   each, so that one thread's copies overlap another's `run`.
//!
//! usage: bench_gpu --models A.onnx,B.onnx [--provider cuda|cpu] [--batches 1024,8192]
//!        [--events 1000000] [--seconds 2] [--repeats 3] [--decode-threads K] [--encode-threads M]
//!        [--inference-threads N] [--json FILE]
//! The models must have the demo's signature (`models/make_gpu_models.py` makes two).
//! ONNX Runtime comes from `ORT_DYLIB_PATH` (on a GPU machine: `source .ort-gpu/device-setup.sh`).
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use arrow_array::cast::AsArray;
use arrow_array::types::Float32Type;
use arrow_array::RecordBatch;
use driftline_benches::in_process::{demo_payloads, run_operators, Stages};
use driftline_benches::{load_model, runtime, sensor_schema, sensors};
use driftline_operators::batch::{BatchBuilder, SourcePosition};
use driftline_operators::decode::EventDecoder;
use driftline_operators::infer::Provider;
use driftline_operators::schema::{EventSchema, LEADING_COLUMNS};
use ort::session::Session;
use ort::value::TensorRef;
use serde_json::json;

struct Options {
    models: Vec<PathBuf>,
    cuda: bool,
    batches: Vec<usize>,
    events: u64,
    seconds: f64,
    repeats: usize,
    decode_threads: usize,
    encode_threads: usize,
    /// Above 1, a third layout runs this many inference threads, one session each.
    inference_threads: usize,
    json: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let o = options()?;
    let schema = sensor_schema(&sensors());
    let started = Instant::now();
    let payloads = demo_payloads(o.events)?;
    eprintln!(
        "bench_gpu: {} events generated in {:.1} s; provider {}; {} cores",
        payloads.len(),
        started.elapsed().as_secs_f64(),
        if o.cuda { "cuda" } else { "cpu" },
        cores()
    );
    let mut rows = Vec::new();
    for model in &o.models {
        for &batch in &o.batches {
            rows.extend(compare(&o, model, batch, &schema, &payloads)?);
        }
    }
    print_table(&o, &rows);
    if let Some(path) = &o.json {
        std::fs::write(path, serde_json::to_vec_pretty(&rows)?)?;
    }
    Ok(())
}

/// Bare ORT and the two pipeline layouts for one model at one batch size, interleaved per repeat.
fn compare(
    o: &Options,
    path: &Path,
    batch_rows: usize,
    schema: &EventSchema,
    payloads: &[Vec<u8>],
) -> anyhow::Result<Vec<serde_json::Value>> {
    let provider = if o.cuda {
        Provider::Cuda {
            device_id: 0,
            require: true,
        }
    } else {
        Provider::Cpu
    };
    // One session per inference thread of the widest layout.
    let mut pipeline_models = (0..o.inference_threads.max(1))
        .map(|_| load_model(path, provider, schema))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("loading {} for the pipeline", path.display()))?;
    let mut bare = bare_session(path, o.cuda)?;
    let sample = decoded_batch(schema, &payloads[..batch_rows.min(payloads.len())])?;
    let features = row_major_features(schema, &sample);
    // Both must compute the same thing before their speeds are compared.
    let pipeline_probs = pipeline_models[0].run(&sample)?;
    let pipeline_probs = pipeline_probs
        .iter()
        .find(|(name, _)| name == "probabilities")
        .context("the model has no `probabilities` output")?
        .1
        .as_fixed_size_list()
        .values()
        .as_primitive::<Float32Type>()
        .values()
        .to_vec();
    let bare_probs = bare_run(&mut bare, &features, sample.num_rows())?;
    let max_diff = pipeline_probs
        .iter()
        .zip(&bare_probs)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    anyhow::ensure!(
        pipeline_probs.len() == bare_probs.len() && max_diff < 1e-3,
        "pipeline and bare ORT disagree: max |Δp| {max_diff}"
    );
    for _ in 0..10 {
        bare_run(&mut bare, &features, sample.num_rows())?;
        for model in &mut pipeline_models {
            model.run(&sample)?;
        }
    }
    let mut layouts = vec![
        Layout::new("pipeline as deployed", 1, 1, 1),
        Layout::new("pipeline", o.decode_threads, 1, o.encode_threads),
    ];
    if o.inference_threads > 1 {
        layouts.push(Layout::new(
            "pipeline",
            o.decode_threads,
            o.inference_threads,
            o.encode_threads,
        ));
    }
    let mut bare_runs = Vec::new();
    let mut layout_runs = vec![Vec::new(); layouts.len()];
    for _ in 0..o.repeats {
        let cpu = cpu_seconds();
        let (rows, seconds) = time_bare(&mut bare, &features, sample.num_rows(), o.seconds)?;
        let batches = rows / sample.num_rows() as u64;
        bare_runs.push(Run {
            rows_per_s: rows as f64 / seconds,
            cpu_s: cpu_seconds() - cpu,
            rows,
            run_ms_per_batch: seconds * 1e3 / batches as f64,
        });
        for (runs, layout) in layout_runs.iter_mut().zip(&layouts) {
            let stages = Stages {
                batch_rows,
                decode_threads: layout.decode,
                encode_threads: layout.encode,
                passes: usize::MAX,
                time_limit: Some(Duration::from_secs_f64(o.seconds)),
            };
            let cpu = cpu_seconds();
            let models = &mut pipeline_models[..layout.infer];
            let measured = run_operators(schema, models, payloads, stages)?;
            runs.push(Run {
                rows_per_s: measured.rows_per_second(),
                cpu_s: cpu_seconds() - cpu,
                rows: measured.rows,
                run_ms_per_batch: measured.infer_seconds * 1e3 / measured.batches as f64,
            });
        }
    }
    let model = path.file_stem().unwrap_or_default().to_string_lossy();
    let bare_median = median(&bare_runs);
    let bare_layout = Layout::new("bare ORT", 0, 1, 0);
    let mut rows = vec![row(
        &model,
        batch_rows,
        &bare_layout,
        &bare_runs,
        bare_median,
        max_diff,
    )];
    for (runs, layout) in layout_runs.iter().zip(&layouts) {
        rows.push(row(&model, batch_rows, layout, runs, bare_median, max_diff));
    }
    Ok(rows)
}

/// How the pipeline's stages are spread over threads.
struct Layout {
    name: String,
    decode: usize,
    infer: usize,
    encode: usize,
}

impl Layout {
    fn new(what: &str, decode: usize, infer: usize, encode: usize) -> Layout {
        let name = match decode {
            0 => what.to_string(),
            _ => format!("{what} ({decode} decode, {infer} inference, {encode} encode threads)"),
        };
        Layout {
            name,
            decode,
            infer,
            encode,
        }
    }
}

/// One timed run.
#[derive(Debug, Clone, Copy)]
struct Run {
    rows_per_s: f64,
    cpu_s: f64,
    rows: u64,
    /// Mean time of one `run` call (for the pipeline: `InferenceModel::run`, with its Arrow →
    /// tensor and tensor → Arrow copies).
    run_ms_per_batch: f64,
}

/// A plain session, built as a user would: the provider registered, nothing else.
fn bare_session(path: &Path, cuda: bool) -> anyhow::Result<Session> {
    let mut builder = Session::builder(&runtime())?
        .with_intra_threads(1)
        .map_err(ort::Error::<()>::from)?;
    if cuda {
        let ep = ort::ep::CUDA::default()
            .with_device_id(0)
            .build()
            .error_on_failure();
        builder = builder
            .with_execution_providers([ep])
            .map_err(ort::Error::<()>::from)?;
    }
    Ok(builder.commit_from_file(path)?)
}

/// One `run`: the probabilities, copied out.
fn bare_run(session: &mut Session, features: &[f32], rows: usize) -> anyhow::Result<Vec<f32>> {
    let width = features.len() / rows;
    let input = TensorRef::from_array_view(([rows, width], features))?;
    let outputs = session.run(ort::inputs!["features" => input])?;
    let (_, labels) = outputs["label"].try_extract_tensor::<i64>()?;
    anyhow::ensure!(labels.len() == rows);
    let (_, probs) = outputs["probabilities"].try_extract_tensor::<f32>()?;
    Ok(probs.to_vec())
}

/// `run` in a loop for `seconds` (and at most 10 million calls): rows scored and time taken.
fn time_bare(
    session: &mut Session,
    features: &[f32],
    rows: usize,
    seconds: f64,
) -> anyhow::Result<(u64, f64)> {
    let width = features.len() / rows;
    let started = Instant::now();
    let mut scored = 0u64;
    let mut checksum = 0f32;
    for _ in 0..10_000_000 {
        let input = TensorRef::from_array_view(([rows, width], features))?;
        let outputs = session.run(ort::inputs!["features" => input])?;
        let (_, probs) = outputs["probabilities"].try_extract_tensor::<f32>()?;
        checksum += probs[0];
        scored += rows as u64;
        if started.elapsed().as_secs_f64() >= seconds {
            break;
        }
    }
    std::hint::black_box(checksum);
    Ok((scored, started.elapsed().as_secs_f64()))
}

fn decoded_batch(schema: &EventSchema, payloads: &[Vec<u8>]) -> anyhow::Result<RecordBatch> {
    let topic: std::sync::Arc<str> = std::sync::Arc::from("in");
    let mut decoder = EventDecoder::new(schema, 1 << 20);
    let mut builder = BatchBuilder::new(schema, payloads.len());
    for (offset, payload) in payloads.iter().enumerate() {
        let row = decoder.decode(payload, Some(1_700_000_000_000))?;
        builder.push(
            row,
            SourcePosition {
                topic: &topic,
                partition: 0,
                offset: offset as i64,
                key: None,
                traceparent: None,
                tracestate: None,
                kafka_timestamp_ms: 1_700_000_000_000,
            },
        );
    }
    Ok(builder.finish()?.batch)
}

/// The feature columns as one row-major `[rows, features]` buffer, as a user's numpy array.
fn row_major_features(schema: &EventSchema, batch: &RecordBatch) -> Vec<f32> {
    let columns: Vec<_> = (0..schema.features.len())
        .map(|i| {
            batch
                .column(LEADING_COLUMNS + i)
                .as_primitive::<Float32Type>()
        })
        .collect();
    (0..batch.num_rows())
        .flat_map(|row| columns.iter().map(move |c| c.value(row)))
        .collect()
}

/// The median rows/s of the repeats.
fn median(runs: &[Run]) -> f64 {
    let mut rates: Vec<f64> = runs.iter().map(|r| r.rows_per_s).collect();
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

fn row(
    model: &str,
    batch: usize,
    layout: &Layout,
    runs: &[Run],
    bare_median: f64,
    max_diff: f32,
) -> serde_json::Value {
    let rates: Vec<f64> = runs.iter().map(|r| r.rows_per_s).collect();
    let rows: u64 = runs.iter().map(|r| r.rows).sum();
    let cpu: f64 = runs.iter().map(|r| r.cpu_s).sum();
    let run_ms = runs.iter().map(|r| r.run_ms_per_batch).sum::<f64>() / runs.len() as f64;
    let median = median(runs);
    json!({
        "model": model,
        "batch": batch,
        "layout": layout.name,
        "decode_threads": layout.decode,
        "inference_threads": layout.infer,
        "encode_threads": layout.encode,
        "rows_per_s": rates,
        "median_rows_per_s": median,
        "min_rows_per_s": rates.iter().copied().fold(f64::INFINITY, f64::min),
        "max_rows_per_s": rates.iter().copied().fold(0.0, f64::max),
        "vs_bare": median / bare_median,
        "cpu_s_per_million_rows": cpu / rows as f64 * 1e6,
        "run_ms_per_batch": run_ms,
        "max_abs_diff_probabilities": max_diff,
    })
}

fn print_table(o: &Options, rows: &[serde_json::Value]) {
    println!(
        "\nprovider {}, {} s per run, median of {} (min–max)\n",
        if o.cuda { "CUDA" } else { "CPU" },
        o.seconds,
        o.repeats,
    );
    println!(
        "| model | batch | run | rows/s (median) | min–max | vs bare ORT | CPU s per 1M rows | ms per `run` |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {}–{} | {:.2} | {:.2} | {:.3} |",
            r["model"].as_str().unwrap_or(""),
            r["batch"],
            r["layout"].as_str().unwrap_or(""),
            rate(&r["median_rows_per_s"]),
            rate(&r["min_rows_per_s"]),
            rate(&r["max_rows_per_s"]),
            r["vs_bare"].as_f64().unwrap_or(0.0),
            r["cpu_s_per_million_rows"].as_f64().unwrap_or(0.0),
            r["run_ms_per_batch"].as_f64().unwrap_or(0.0),
        );
    }
}

/// 7.8M, 390k, 7.9k.
fn rate(value: &serde_json::Value) -> String {
    let v = value.as_f64().unwrap_or(0.0);
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{:.1}k", v / 1e3)
    }
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the struct we hand it.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        models: Vec::new(),
        cuda: true,
        batches: vec![8192],
        events: 1_000_000,
        seconds: 2.0,
        repeats: 3,
        decode_threads: (cores() / 2).max(1),
        encode_threads: (cores() / 4).max(1),
        inference_threads: 1,
        json: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--models" => o.models = value.split(',').map(PathBuf::from).collect(),
            "--provider" => {
                o.cuda = match value.as_str() {
                    "cuda" => true,
                    "cpu" => false,
                    other => anyhow::bail!("--provider is cuda or cpu, not {other}"),
                }
            }
            "--batches" => {
                o.batches = value.split(',').map(str::parse).collect::<Result<_, _>>()?
            }
            "--events" => o.events = value.parse()?,
            "--seconds" => o.seconds = value.parse()?,
            "--repeats" => o.repeats = value.parse()?,
            "--decode-threads" => o.decode_threads = value.parse()?,
            "--encode-threads" => o.encode_threads = value.parse()?,
            "--inference-threads" => o.inference_threads = value.parse()?,
            "--json" => o.json = Some(PathBuf::from(value)),
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    anyhow::ensure!(!o.models.is_empty(), "--models A.onnx[,B.onnx] is required");
    anyhow::ensure!(o.repeats >= 1 && o.seconds > 0.0 && o.seconds <= 60.0);
    Ok(o)
}
