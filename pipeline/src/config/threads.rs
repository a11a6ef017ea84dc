//! How many threads decode and how many inference sessions score: `pipeline.decode_threads` and
//! `runtime.sessions`, each a number or "auto", resolved against the cores this process may use
//! (`available_parallelism` reads the container's CPU quota) and the execution provider the
//! models actually got.
//!
//! "auto" gives the inference sessions their cores first, then one each to the sink (encode and
//! produce), the source (the consumer's poll) and, with drift on, the drift thread; the decode
//! threads take what is left, at least one. So on a machine with spare cores drift runs on a
//! core of its own and costs the pipeline no throughput; on a small one every stage still runs.
use std::fmt;

use serde::{Deserialize, Serialize};

/// A thread count that is either fixed or chosen at startup from the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadCount {
    Auto,
    Fixed(usize),
}

impl Serialize for ThreadCount {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ThreadCount::Auto => s.serialize_str("auto"),
            ThreadCount::Fixed(n) => s.serialize_u64(*n as u64),
        }
    }
}

impl<'de> Deserialize<'de> for ThreadCount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A number from TOML, or a string: "auto", or digits from an environment variable.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(u64),
            Text(String),
        }
        let invalid = |what: &dyn std::fmt::Display| {
            serde::de::Error::custom(format!(
                "expected \"auto\" or a number of threads, not {what}"
            ))
        };
        match Raw::deserialize(d)? {
            Raw::Count(n) => Ok(ThreadCount::Fixed(n as usize)),
            Raw::Text(t) if t.trim().eq_ignore_ascii_case("auto") => Ok(ThreadCount::Auto),
            Raw::Text(t) => match t.trim().parse::<usize>() {
                Ok(n) => Ok(ThreadCount::Fixed(n)),
                Err(_) => Err(invalid(&format!("{t:?}"))),
            },
        }
    }
}

/// The threads of one pipeline, as resolved at startup (and logged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadPlan {
    /// The cores this process may use.
    pub cores: usize,
    pub decode_threads: usize,
    pub sessions: usize,
    /// Whether, with drift on, a core was left for the drift thread after every other stage.
    pub drift_has_a_core: bool,
}

/// What the plan depends on besides the two settings.
#[derive(Debug, Clone, Copy)]
pub struct PlanInputs {
    pub decode_threads: ThreadCount,
    pub sessions: ThreadCount,
    pub intra_threads: usize,
    /// The models run on CUDA (not merely asked to: a fallback to the CPU counts as CPU).
    pub cuda: bool,
    pub drift: bool,
    /// A model is loaded (without one, nothing is scored: no sessions, no sink).
    pub scoring: bool,
    pub cores: usize,
}

impl ThreadPlan {
    /// Resolves the plan; a fixed session count whose intra-op threads exceed the cores on the
    /// CPU provider is refused (oversubscribed sessions run slower than fewer sessions).
    pub fn resolve(i: PlanInputs) -> Result<ThreadPlan, String> {
        let cores = i.cores.max(1);
        let intra = i.intra_threads.max(1);
        let sessions = match (i.scoring, i.sessions) {
            (false, _) => 0,
            (true, ThreadCount::Fixed(n)) => {
                if !i.cuda && n * intra > cores {
                    return Err(format!(
                        "runtime.sessions = {n} with runtime.intra_threads = {intra} needs {} cores for \
                         inference, and this process may use {cores}: lower one of them, or set \
                         runtime.sessions = \"auto\"",
                        n * intra
                    ));
                }
                n
            }
            (true, ThreadCount::Auto) if i.cuda => 2,
            (true, ThreadCount::Auto) => 1,
        };
        // A CUDA session's thread mostly feeds the GPU: one core each, whatever intra_threads.
        let inference_cores = if i.cuda { sessions } else { sessions * intra };
        let sink = usize::from(i.scoring);
        let source = 1;
        let drift = usize::from(i.drift);
        let others = inference_cores + sink + source;
        let decode_threads = match i.decode_threads {
            ThreadCount::Fixed(n) => n,
            ThreadCount::Auto => cores.saturating_sub(others + drift).max(1),
        };
        Ok(ThreadPlan {
            cores,
            decode_threads,
            sessions,
            drift_has_a_core: i.drift && others + decode_threads < cores,
        })
    }

    /// The cores this process may use: the CPU quota of its container, or the machine's.
    pub fn available_cores() -> usize {
        std::thread::available_parallelism().map_or(1, usize::from)
    }
}

impl fmt::Display for ThreadPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} decode thread(s), {} inference session(s) on {} core(s)",
            self.decode_threads, self.sessions, self.cores
        )?;
        if self.drift_has_a_core {
            write!(f, ", a core for drift")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(cores: usize) -> PlanInputs {
        PlanInputs {
            decode_threads: ThreadCount::Auto,
            sessions: ThreadCount::Auto,
            intra_threads: 1,
            cuda: false,
            drift: true,
            scoring: true,
            cores,
        }
    }

    #[test]
    fn auto_on_a_small_machine_runs_every_stage_once() {
        let plan = ThreadPlan::resolve(inputs(2)).unwrap();
        assert_eq!((plan.decode_threads, plan.sessions), (1, 1));
        assert!(!plan.drift_has_a_core);
    }

    #[test]
    fn auto_on_sixteen_cores_gives_drift_its_own_core_and_decode_the_rest() {
        let plan = ThreadPlan::resolve(inputs(16)).unwrap();
        // 16 cores: 1 session, 1 sink, 1 source, 1 drift, 12 decode.
        assert_eq!((plan.decode_threads, plan.sessions), (12, 1));
        assert!(plan.drift_has_a_core);
        let cuda = ThreadPlan::resolve(PlanInputs {
            cuda: true,
            intra_threads: 4,
            ..inputs(16)
        })
        .unwrap();
        assert_eq!((cuda.decode_threads, cuda.sessions), (11, 2));
        let no_drift = ThreadPlan::resolve(PlanInputs {
            drift: false,
            ..inputs(16)
        })
        .unwrap();
        assert_eq!(no_drift.decode_threads, 13);
        assert!(!no_drift.drift_has_a_core);
    }

    #[test]
    fn intra_threads_count_against_the_cores() {
        let plan = ThreadPlan::resolve(PlanInputs {
            intra_threads: 4,
            ..inputs(8)
        })
        .unwrap();
        // 4 intra-op threads, sink, source, drift: 1 left to decode.
        assert_eq!((plan.decode_threads, plan.sessions), (1, 1));
        let refused = ThreadPlan::resolve(PlanInputs {
            sessions: ThreadCount::Fixed(3),
            intra_threads: 2,
            ..inputs(4)
        })
        .unwrap_err();
        assert!(refused.contains("needs 6 cores"), "{refused}");
        // On CUDA the session threads feed the GPU: not refused.
        let cuda = ThreadPlan::resolve(PlanInputs {
            sessions: ThreadCount::Fixed(3),
            intra_threads: 2,
            cuda: true,
            ..inputs(4)
        })
        .unwrap();
        assert_eq!(cuda.sessions, 3);
    }

    #[test]
    fn fixed_counts_are_kept_and_nothing_scores_without_a_model() {
        let plan = ThreadPlan::resolve(PlanInputs {
            decode_threads: ThreadCount::Fixed(4),
            sessions: ThreadCount::Fixed(2),
            ..inputs(2)
        })
        .unwrap();
        assert_eq!((plan.decode_threads, plan.sessions), (4, 2));
        let features_only = ThreadPlan::resolve(PlanInputs {
            scoring: false,
            ..inputs(4)
        })
        .unwrap();
        assert_eq!(
            (features_only.decode_threads, features_only.sessions),
            (2, 0)
        );
    }

    #[test]
    fn counts_parse_from_toml_numbers_and_environment_strings() {
        #[derive(Deserialize)]
        struct T {
            n: ThreadCount,
        }
        let parse = |text: &str| toml_value(text).map(|t: T| t.n);
        assert_eq!(parse("n = \"auto\"").unwrap(), ThreadCount::Auto);
        assert_eq!(parse("n = 4").unwrap(), ThreadCount::Fixed(4));
        assert_eq!(parse("n = \"8\"").unwrap(), ThreadCount::Fixed(8));
        let err = parse("n = \"many\"").unwrap_err();
        assert!(err.contains("expected \"auto\" or a number"), "{err}");
    }

    fn toml_value<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
        config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| e.to_string())
    }
}
