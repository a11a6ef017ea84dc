//! Metrics through the OpenTelemetry SDK: one meter provider per pipeline, read two ways: by
//! the Prometheus exporter when `/metrics` is scraped, and by a periodic OTLP/HTTP push when
//! `telemetry.otlp_endpoint` is set.
//!
//! Counters and gauges are observable instruments: their callbacks read the pipeline's atomics
//! at collection time, so the hot path pays nothing for them. Names follow OpenTelemetry's
//! semantic conventions where they exist (`messaging.client.*`, `process.*`) and are
//! `driftline.*` otherwise.
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use opentelemetry::metrics::{Meter, MeterProvider};
use opentelemetry::KeyValue;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::Resource;

use crate::config::Settings;
use crate::telemetry::health::HealthState;
use crate::telemetry::metrics::PipelineMetrics;
use crate::telemetry::performance;
use crate::telemetry::process;

pub struct MetricsExporter {
    provider: SdkMeterProvider,
    registry: prometheus::Registry,
    meter: Meter,
}

/// The resource every span and metric of this process carries.
pub fn resource(settings: &Settings) -> Resource {
    Resource::builder()
        .with_service_name(settings.telemetry.service_name.clone())
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
}

impl MetricsExporter {
    pub fn new(settings: &Settings) -> anyhow::Result<MetricsExporter> {
        let registry = prometheus::Registry::new();
        let prometheus = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .build()
            .context("creating the Prometheus exporter")?;
        let mut builder = SdkMeterProvider::builder()
            .with_resource(resource(settings))
            .with_reader(prometheus);
        let t = &settings.telemetry;
        if !t.otlp_endpoint.is_empty() {
            let exporter = opentelemetry_otlp::MetricExporter::builder()
                .with_http()
                .with_endpoint(format!(
                    "{}/v1/metrics",
                    t.otlp_endpoint.trim_end_matches('/')
                ))
                .build()
                .context("creating the OTLP metric exporter")?;
            let reader = PeriodicReader::builder(exporter)
                .with_interval(Duration::from_millis(t.metrics_interval_ms))
                .build();
            builder = builder.with_reader(reader);
        }
        let provider = builder.build();
        let meter = provider.meter("driftline");
        Ok(MetricsExporter {
            provider,
            registry,
            meter,
        })
    }

    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// The observable instruments, reading `metrics` and `health` when collected.
    pub fn observe(
        &self,
        settings: &Settings,
        metrics: &Arc<PipelineMetrics>,
        health: &Arc<HealthState>,
    ) {
        let meter = &self.meter;
        let k = &settings.kafka;
        let kafka = KeyValue::new("messaging.system", "kafka");
        let group = KeyValue::new("messaging.consumer.group.name", k.group_id.clone());

        let m = Arc::clone(metrics);
        let attributes = [kafka.clone(), group];
        meter
            .u64_observable_counter("messaging.client.consumed.messages")
            .with_unit("{message}")
            .with_description("Events consumed from the input topics")
            .with_callback(move |o| o.observe(m.events_in.load(Ordering::Relaxed), &attributes))
            .build();

        let m = Arc::clone(metrics);
        let outputs = [
            ("prediction", k.output_topic.clone()),
            ("dead_letter", k.dlq_topic.clone()),
            ("drift_report", k.drift_topic.clone()),
            ("drift_alert", k.alerts_topic.clone()),
            ("fleet_partial", settings.fleet.partials_topic.clone()),
        ]
        .map(|(output, topic)| {
            [
                kafka.clone(),
                KeyValue::new("messaging.destination.name", topic),
                KeyValue::new("driftline.output", output),
            ]
        });
        meter
            .u64_observable_counter("messaging.client.sent.messages")
            .with_unit("{message}")
            .with_description("Outputs acknowledged by the broker, by kind and topic")
            .with_callback(move |o| {
                let counts = [
                    &m.predictions_out,
                    &m.dead_letters_out,
                    &m.drift_reports,
                    &m.drift_alerts,
                    &m.fleet_partials,
                ];
                for (count, attributes) in counts.iter().zip(&outputs) {
                    o.observe(count.load(Ordering::Relaxed), attributes);
                }
            })
            .build();

        let m = Arc::clone(metrics);
        meter
            .u64_observable_counter("driftline.dead_letters")
            .with_unit("{message}")
            .with_description("Dead letters acknowledged, by the reason the event was rejected")
            .with_callback(move |o| {
                if let Ok(by_reason) = m.dead_letters_by_reason.lock() {
                    for (reason, count) in by_reason.iter() {
                        o.observe(*count, &[KeyValue::new("error.type", *reason)]);
                    }
                }
            })
            .build();

        for (name, description, pick) in [
            (
                "driftline.batches",
                "Batches handed to the model",
                (|m: &PipelineMetrics| &m.batches)
                    as fn(&PipelineMetrics) -> &std::sync::atomic::AtomicU64,
            ),
            (
                "driftline.delivery.failures",
                "Outputs the broker did not acknowledge",
                |m| &m.delivery_failures,
            ),
            (
                "driftline.consumer.errors",
                "Errors reported by the consumer",
                |m| &m.consumer_errors,
            ),
            (
                "driftline.consumer.commits",
                "Offset commits the group coordinator accepted",
                |m| &m.commits,
            ),
            (
                "driftline.consumer.commit_failures",
                "Offset commits refused (a stale generation, a rebalance, a broker error), logged with their reason",
                |m| &m.commit_failures,
            ),
            (
                "driftline.trace_headers.dropped",
                "traceparent/tracestate headers over 512 bytes, not carried to predictions",
                |m| &m.trace_headers_dropped,
            ),
            (
                "driftline.dead_letters.minimal",
                "Dead letters refused whole, sent again with reason and source position only",
                |m| &m.minimal_dead_letters,
            ),
        ] {
            let m = Arc::clone(metrics);
            meter
                .u64_observable_counter(name)
                .with_description(description)
                .with_callback(move |o| o.observe(pick(&m).load(Ordering::Relaxed), &[]))
                .build();
        }

        let m = Arc::clone(metrics);
        meter
            .i64_observable_gauge("driftline.consumer.lag")
            .with_unit("{message}")
            .with_description(
                "Messages behind the high watermark, per assigned partition (committed offsets)",
            )
            .with_callback(move |o| {
                if let Ok(lags) = m.consumer_lag.lock() {
                    for l in lags.iter() {
                        o.observe(
                            l.lag,
                            &[
                                KeyValue::new("messaging.destination.name", l.topic.clone()),
                                KeyValue::new(
                                    "messaging.destination.partition.id",
                                    l.partition.to_string(),
                                ),
                            ],
                        );
                    }
                }
            })
            .build();

        let m = Arc::clone(metrics);
        meter
            .f64_observable_gauge("driftline.drift.score")
            .with_description("The latest window's drift statistic per column (PSI, KL, KS D)")
            .with_callback(move |o| {
                if let Ok(columns) = m.drift_columns.lock() {
                    for (column, d) in columns.iter() {
                        let observe = |statistic: &'static str, value: f64| {
                            o.observe(
                                value,
                                &[
                                    KeyValue::new("driftline.column", column.clone()),
                                    KeyValue::new("driftline.statistic", statistic),
                                ],
                            )
                        };
                        if let Some(psi) = d.psi {
                            observe("psi", psi);
                        }
                        if let Some(kl) = d.kl {
                            observe("kl", kl);
                        }
                        if let Some(ks) = d.ks {
                            observe("ks", ks);
                        }
                    }
                }
            })
            .build();

        let m = Arc::clone(metrics);
        meter
            .u64_observable_gauge("driftline.drift.drifting")
            .with_description("1 while the column's latest window drifted")
            .with_callback(move |o| {
                if let Ok(columns) = m.drift_columns.lock() {
                    for (column, d) in columns.iter() {
                        o.observe(
                            u64::from(d.drifting),
                            &[KeyValue::new("driftline.column", column.clone())],
                        );
                    }
                }
            })
            .build();

        let m = Arc::clone(metrics);
        meter
            .u64_observable_gauge("driftline.model.info")
            .with_description(
                "1 per loaded model, with its name, version, sha256, execution provider, role (serving, canary, shadow) and traffic weight",
            )
            .with_callback(move |o| {
                let models = m.models.lock().map(|m| m.clone()).unwrap_or_default();
                for e in models {
                    let id = &e.identity;
                    o.observe(
                        1,
                        &[
                            KeyValue::new("model.name", id.name.clone()),
                            KeyValue::new("model.version", id.version.clone()),
                            KeyValue::new("model.sha256", id.sha256.clone()),
                            KeyValue::new("driftline.execution_provider", id.execution_provider),
                            KeyValue::new("driftline.role", e.role.as_str()),
                            KeyValue::new("driftline.weight", i64::from(e.weight)),
                        ],
                    );
                }
            })
            .build();

        performance::observe(meter, &metrics.performance);

        let m = Arc::clone(metrics);
        meter
            .u64_observable_counter("driftline.model.predictions")
            .with_unit("{event}")
            .with_description(
                "Events scored, by the model variant that scored them (canary routing)",
            )
            .with_callback(move |o| {
                if let Ok(counts) = m.variant_predictions.lock() {
                    for (variant, n) in counts.iter() {
                        o.observe(*n, &[KeyValue::new("driftline.variant", variant.clone())]);
                    }
                }
            })
            .build();

        let m = Arc::clone(metrics);
        meter
            .u64_observable_counter("driftline.shadow.comparisons")
            .with_unit("{comparison}")
            .with_description("Shadow against serving model: labels compared (agree or disagree), scores compared, events scored")
            .with_callback(move |o| {
                let a = *m.shadow.lock().unwrap_or_else(|e| e.into_inner());
                if a.events == 0 {
                    return;
                }
                let observe = |n: u64, what: &'static str| o.observe(n, &[KeyValue::new("driftline.comparison", what)]);
                observe(a.labels_agreed, "label_agree");
                observe(a.labels_compared - a.labels_agreed, "label_disagree");
                observe(a.scores_compared, "score");
                observe(a.events, "event");
            })
            .build();

        let m = Arc::clone(metrics);
        meter
            .f64_observable_counter("driftline.shadow.score_abs_diff")
            .with_description("Sum of |shadow score - serving score| over the compared scores (divide by driftline.shadow.comparisons{score} for the mean)")
            .with_callback(move |o| {
                let a = *m.shadow.lock().unwrap_or_else(|e| e.into_inner());
                if a.events > 0 {
                    o.observe(a.score_abs_diff_sum, &[]);
                }
            })
            .build();

        let m = Arc::clone(metrics);
        meter
            .f64_observable_gauge("driftline.shadow.agreement")
            .with_description("Since the start: share of labels the shadow agrees on (label), mean absolute score difference (score_mean_abs_diff)")
            .with_callback(move |o| {
                let a = *m.shadow.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(v) = a.label_agreement() {
                    o.observe(v, &[KeyValue::new("driftline.statistic", "label")]);
                }
                if let Some(v) = a.score_mean_abs_diff() {
                    o.observe(v, &[KeyValue::new("driftline.statistic", "score_mean_abs_diff")]);
                }
            })
            .build();

        let m = Arc::clone(metrics);
        meter
            .u64_observable_counter("driftline.model.reloads")
            .with_unit("{reload}")
            .with_description(
                "Model reloads: swapped in (ok) or refused, the old model serving on (failed)",
            )
            .with_callback(move |o| {
                o.observe(
                    m.model_reloads.load(Ordering::Relaxed),
                    &[KeyValue::new("result", "ok")],
                );
                o.observe(
                    m.model_reload_failures.load(Ordering::Relaxed),
                    &[KeyValue::new("result", "failed")],
                );
            })
            .build();

        let h = Arc::clone(health);
        meter
            .f64_observable_gauge("driftline.sink.undelivered")
            .with_unit("s")
            .with_description(
                "How long outputs have waited with no acknowledgement from the broker (0 while they flow)",
            )
            .with_callback(move |o| o.observe(h.undelivered_ms() as f64 / 1000.0, &[]))
            .build();

        let h = Arc::clone(health);
        meter
            .u64_observable_gauge("driftline.ready")
            .with_description("1 when /readyz answers ready")
            .with_callback(move |o| o.observe(u64::from(h.readiness().is_ok()), &[]))
            .build();

        meter
            .u64_observable_gauge("process.memory.usage")
            .with_unit("By")
            .with_description("Resident set size")
            .with_callback(|o| {
                if let Some(rss) = process::resident_bytes() {
                    o.observe(rss, &[]);
                }
            })
            .build();

        meter
            .f64_observable_counter("process.cpu.time")
            .with_unit("s")
            .with_description("CPU seconds by mode")
            .with_callback(|o| {
                if let Some((user, system)) = process::cpu_seconds() {
                    o.observe(user, &[KeyValue::new("cpu.mode", "user")]);
                    o.observe(system, &[KeyValue::new("cpu.mode", "system")]);
                }
            })
            .build();
    }

    /// Everything, in Prometheus' text exposition format.
    pub fn prometheus_text(&self) -> String {
        use prometheus::Encoder;
        let mut out = Vec::new();
        if let Err(e) = prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "encoding metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// Pushes what is left over OTLP and stops the readers.
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::debug!(error = %e, "metrics shutdown");
        }
    }
}
