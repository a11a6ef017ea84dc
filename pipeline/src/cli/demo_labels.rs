//! The demo's labels: whether each simulated reading was really faulty, confirmed a couple of
//! seconds after the event (one in twenty never), on a labels topic co-partitioned with the
//! input. Before the feed starts, the demo fits its reference profile, CBPE included, on
//! labeled readings generated with another seed (as `driftline profile` over a labeled file
//! would), so that each performance window has CBPE's estimate beside the realized accuracy.
//! The summary prints both per window: they fall together once the temperature drifts.
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message};

use crate::cli::gen::{EventGenerator, GenOptions, LabelFeed};
use crate::cli::profile::build_profile;
use crate::config::{Settings, WindowKind};

/// How late a label arrives, and how many never do.
const LABEL_DELAY: Duration = Duration::from_secs(2);
const MISSING_EVERY: u64 = 20;
/// Reference windows CBPE's thresholds are fitted on: their spread is estimated from these, and
/// from 6 it came out half the true one (a realized ROC AUC alert before the drift).
const REFERENCE_WINDOWS: u64 = 12;

/// The labels feed and the files made for it (removed when dropped).
pub struct DemoLabels {
    pub feed: LabelFeed,
    pub window_events: u64,
    dir: PathBuf,
}

impl Drop for DemoLabels {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Points `settings` at the labels topic and a profile fitted on labeled reference readings.
pub fn prepare(settings: &mut Settings, seed: u64) -> anyhow::Result<DemoLabels> {
    let input = settings.kafka.input_topics[0].clone();
    let topic = format!("{input}.labels");
    // Each reading has a unique event id; the device id stays its Kafka key.
    settings.schema.id_field = "event_id".into();
    settings.kafka.labels_topic = topic.clone();
    settings.labels.id_field = "event_id".into();
    settings.labels.label_field = "label".into();
    settings.labels.max_delay_ms = 5_000;
    // Performance windows as long as the drift windows.
    let window_events = settings.drift.pane_events * settings.drift.panes as u64;
    settings.performance.window = WindowKind::Count;
    settings.performance.window_events = window_events;

    let dir = std::env::temp_dir().join(format!("driftline-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let labels = DemoLabels {
        feed: LabelFeed {
            topic,
            delay: LABEL_DELAY,
            missing_every: MISSING_EVERY,
        },
        window_events,
        dir,
    };
    let reference = labels.dir.join("reference.jsonl");
    let options = GenOptions {
        seed: seed.wrapping_add(1_000_003),
        ..GenOptions::default()
    };
    let mut generator = EventGenerator::new(options, crate::clock::now_ms() - 3_600_000)?;
    let mut file = std::io::BufWriter::new(std::fs::File::create(&reference)?);
    let mut event = Vec::with_capacity(512);
    for i in 0..REFERENCE_WINDOWS * window_events {
        generator.event(i, &mut event);
        // The label joins the event's own fields, as in a labeled file for `driftline profile`.
        event.pop();
        write!(&mut event, ",\"label\":{}}}", generator.last_label())?;
        file.write_all(&event)?;
        file.write_all(b"\n")?;
    }
    file.flush()?;
    drop(file);
    settings.performance.label_field = "label".into();
    let run = build_profile(settings, &reference)?;
    anyhow::ensure!(
        run.profile.performance.is_some(),
        "the demo's reference did not fit performance estimation"
    );
    let profile = labels.dir.join("profile.json");
    std::fs::write(&profile, run.profile.to_json())?;
    settings.drift.profile = profile.display().to_string();
    println!(
        "  reference: {} labeled readings (another seed), drift profile and CBPE fitted on them",
        run.profile.n_events
    );
    Ok(labels)
}

/// Reads the performance windows back from the drift topic and prints realized accuracy beside
/// CBPE's estimate, as a consumer of the drift topic would see them.
pub fn print_performance(
    bootstrap: &str,
    drift_topic: &str,
    labels: &DemoLabels,
) -> anyhow::Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "driftline-demo-summary")
        .set("enable.auto.commit", "false")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(drift_topic), Duration::from_secs(5))?;
    let mut assignment = rdkafka::TopicPartitionList::new();
    let mut remaining = 0;
    for p in metadata.topics().iter().flat_map(|t| t.partitions()) {
        let (low, high) = consumer.fetch_watermarks(drift_topic, p.id(), Duration::from_secs(5))?;
        assignment.add_partition_offset(drift_topic, p.id(), rdkafka::Offset::Beginning)?;
        remaining += high - low;
    }
    consumer.assign(&assignment)?;
    let mut windows = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while remaining > 0 && std::time::Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        remaining -= 1;
        let Ok(record) =
            serde_json::from_slice::<serde_json::Value>(message?.payload().unwrap_or_default())
        else {
            continue;
        };
        if record["kind"] == "performance" {
            windows.push(record);
        }
    }
    println!(
        "  model performance per window of {} predictions (labels {} s late, 1 in {} never sent):",
        labels.window_events,
        LABEL_DELAY.as_secs(),
        MISSING_EVERY
    );
    println!("    predictions       labeled   accuracy   CBPE estimate (± 3 sampling errors)");
    for w in &windows {
        let first = w["first_prediction"].as_u64().unwrap_or(0);
        let metric = |list: &str| {
            (w[list].as_array().into_iter().flatten())
                .find(|m| m["metric"] == "accuracy")
                .cloned()
        };
        let realized = metric("realized").and_then(|m| m["value"].as_f64());
        let estimate = metric("estimated");
        let value = estimate.as_ref().and_then(|e| e["value"].as_f64());
        let band = estimate.as_ref().and_then(|e| e["sampling_error"].as_f64());
        let alert = estimate.as_ref().is_some_and(|e| e["alert"] == true);
        println!(
            "    {:>7}-{:<8} {:>6.1} %   {:>8}   {:>8} ± {:.3}{}{}",
            first,
            first + w["predictions"].as_u64().unwrap_or(0).saturating_sub(1),
            100.0 * w["labeled_fraction"].as_f64().unwrap_or(0.0),
            realized.map_or("-".into(), |v| format!("{v:.4}")),
            value.map_or("-".into(), |v| format!("{v:.4}")),
            3.0 * band.unwrap_or(f64::NAN),
            if alert {
                "  outside the reference's range: alert"
            } else {
                ""
            },
            if w["complete"] == false {
                "  (incomplete)"
            } else {
                ""
            },
        );
    }
    Ok(())
}
