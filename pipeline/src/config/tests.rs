use super::*;
use std::io::Write;

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("temp file");
    f.write_all(text.as_bytes()).expect("write");
    f
}

const FEATURES: &str = "[schema]\nfeatures = [{ name = \"t\", type = \"f32\" }]\n";

#[test]
fn defaults_then_file_then_environment() {
    let f = file(&format!(
        "{FEATURES}[batch]\nmax_rows = 64\n[kafka]\ngroup_id = \"from-file\"\n"
    ));
    let env = vec![
        (
            "DRIFTLINE__KAFKA__GROUP_ID".to_string(),
            "from-env".to_string(),
        ),
        (
            "DRIFTLINE__KAFKA__INPUT_TOPICS".to_string(),
            "a,b".to_string(),
        ),
        (
            "DRIFTLINE__KAFKA__COMMON__SASL_PASSWORD".to_string(),
            "hunter2".to_string(),
        ),
        ("UNRELATED".to_string(), "x".to_string()),
    ];
    let s = Settings::load_with_env(Some(f.path()), env).expect("loads");
    assert_eq!(s.batch.max_rows, 64, "file overrides default");
    assert_eq!(s.batch.linger_ms, 5, "default kept");
    assert_eq!(s.kafka.group_id, "from-env", "environment overrides file");
    assert_eq!(s.kafka.input_topics, vec!["a", "b"]);
    assert_eq!(
        s.kafka.common.get("sasl.password").map(String::as_str),
        Some("hunter2")
    );
    assert_eq!(
        s.kafka
            .consumer
            .get("fetch.wait.max.ms")
            .map(String::as_str),
        Some("100"),
        "dotted keys survive"
    );
    let printed = s.redacted_toml();
    assert!(
        !printed.contains("hunter2") && printed.contains("<redacted>"),
        "{printed}"
    );
}

#[test]
fn unknown_keys_are_errors_that_name_the_key() {
    let f = file(&format!("{FEATURES}[batch]\nmax_rowz = 64\n"));
    let err = Settings::load_with_env(Some(f.path()), Vec::new()).expect_err("unknown key");
    assert!(err.to_string().contains("max_rowz"), "{err}");
    let err = Settings::load_with_env(None, vec![("DRIFTLINE__BATCH__NOPE".into(), "1".into())])
        .expect_err("unknown env key");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn cross_field_problems_are_listed() {
    let f = file("[schema]\nfeatures = []\n[kafka]\noutput_topic = \"events\"\n[kafka.consumer]\n\"enable.auto.offset.store\" = \"true\"\n");
    let err = Settings::load_with_env(Some(f.path()), Vec::new()).expect_err("invalid");
    let text = err.to_string();
    for needle in [
        "features is empty",
        "also an input topic",
        "enable.auto.offset.store",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in {text}");
    }
}

#[test]
fn without_a_model_no_output_topic_is_needed_and_canaries_are_refused() {
    // Drift on, no [model]: valid without an output topic.
    let f = file(&format!(
        "{FEATURES}[kafka]\noutput_topic = \"\"\n[drift]\nenabled = true\n"
    ));
    let s = Settings::load_with_env(Some(f.path()), Vec::new()).expect("loads");
    assert!(!s.has_model());
    // With a model the output topic is required again.
    let with_model = vec![("DRIFTLINE__MODEL__PATH".into(), "m.onnx".into())];
    let err = Settings::load_with_env(Some(f.path()), with_model).expect_err("no output topic");
    assert!(
        err.to_string().contains("kafka.output_topic is empty"),
        "{err}"
    );
    // A shadow beside no serving model is a mistake, not a silent no-op.
    let f = file(&format!(
        "{FEATURES}[drift]\nenabled = true\n[model.shadow]\npath = \"s.onnx\"\n"
    ));
    let err = Settings::load_with_env(Some(f.path()), Vec::new()).expect_err("shadow alone");
    assert!(err.to_string().contains("need a serving model"), "{err}");
}

#[test]
fn shipped_configs_load() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    for entry in std::fs::read_dir(&root).expect("configs/") {
        let path = entry.expect("entry").path();
        if path.file_name().is_some_and(|n| n != "default.toml")
            && path.extension().is_some_and(|e| e == "toml")
        {
            Settings::load_with_env(Some(&path), Vec::new())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}

#[test]
fn per_column_drift_thresholds_inherit_the_global_ones() {
    let f = file(&format!(
        "{FEATURES}[drift.thresholds]\nkl = 0.3\n[drift.columns.t]\npsi = 0.05\n"
    ));
    let s = Settings::load_with_env(Some(f.path()), Vec::new()).expect("loads");
    let t = s.drift.columns["t"].over(&s.drift.thresholds);
    assert_eq!((t.psi, t.kl, t.alpha), (0.05, 0.3, 0.05));
}

#[test]
fn secrets_come_from_files_and_environment_variables_and_are_redacted() {
    let demo = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/demo.toml"));
    let dir = tempfile::tempdir().expect("temp dir");
    let secret_file = dir.path().join("kafka-password");
    std::fs::write(&secret_file, "s3cret-from-file\n").expect("write secret");
    std::env::set_var("DRIFTLINE_TEST_SCRAM_SECRET", "s3cret-from-env");
    let env = [
        (
            "DRIFTLINE__KAFKA__COMMON__SASL_PASSWORD".to_string(),
            format!("${{file:{}}}", secret_file.display()),
        ),
        (
            "DRIFTLINE__KAFKA__CONSUMER__SASL_OAUTHBEARER_CLIENT_SECRET".to_string(),
            "${env:DRIFTLINE_TEST_SCRAM_SECRET}".to_string(),
        ),
    ];
    let settings = Settings::load_with_env(Some(demo), env).expect("settings");
    assert_eq!(settings.kafka.common["sasl.password"], "s3cret-from-file");
    assert_eq!(
        settings.kafka.consumer["sasl.oauthbearer.client.secret"],
        "s3cret-from-env"
    );
    let shown = settings.redacted_toml();
    assert!(!shown.contains("s3cret"), "{shown}");

    let missing = [(
        "DRIFTLINE__KAFKA__COMMON__SASL_PASSWORD".to_string(),
        "${file:/nonexistent/secret}".to_string(),
    )];
    match Settings::load_with_env(Some(demo), missing) {
        Err(ConfigError::Invalid(problems)) => assert!(
            problems
                .iter()
                .any(|p| p.contains("sasl.password") && p.contains("/nonexistent/secret")),
            "{problems:?}"
        ),
        other => panic!(
            "a missing secret file must be an error: {:?}",
            other.map(|_| ())
        ),
    }
}

#[test]
fn the_health_server_listens_on_loopback_unless_configured() {
    let demo = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/demo.toml"));
    let settings = Settings::load_with_env(Some(demo), Vec::new()).expect("settings");
    let addr: std::net::SocketAddr = settings.health.listen.parse().expect("an address");
    assert!(addr.ip().is_loopback(), "{addr}");
    assert!(!settings.health.admin, "admin endpoints are off by default");
}

#[test]
fn the_settings_may_name_the_cores_to_plan_for() {
    let schema = "[schema]\nfeatures = [{ name = \"x\", type = \"f32\" }]\n";
    let settings = Settings::from_toml(&format!(
        "{schema}[pipeline]\ncores = 16\n[drift]\nenabled = false\n"
    ))
    .expect("settings");
    let plan = settings.thread_plan(false, true).unwrap();
    // 16 cores: 1 session, 1 sink, 1 source, 13 decode.
    assert_eq!(
        (plan.cores, plan.decode_threads, plan.sessions),
        (16, 13, 1)
    );
    let zero = Settings::from_toml(&format!("{schema}[pipeline]\ncores = 0\n"));
    assert!(
        format!("{:?}", zero.err()).contains("pipeline.cores must be at least 1"),
        "zero cores refused"
    );
}

#[test]
fn the_fleet_view_needs_time_windows_one_topic_and_a_profile_file() {
    let schema = "[schema]\nfeatures = [{ name = \"x\", type = \"f32\" }]\n";
    let refused = Settings::from_toml(&format!(
        "{schema}[kafka]\ninput_topics = [\"a\", \"b\"]\n[drift]\nenabled = true\n[fleet]\nenabled = true\nreplay_timeout_ms = 0\n"
    ));
    let why = format!("{:?}", refused.err());
    for needed in [
        "event-time windows",
        "needs drift.profile",
        "exactly one input topic",
        "replay_timeout_ms must be positive",
    ] {
        assert!(why.contains(needed), "{needed}: {why}");
    }
    let settings = Settings::from_toml(&format!(
        "{schema}[kafka]\ngroup_id = \"g\"\ninput_topics = [\"events\"]\n[drift]\nenabled = true\nprofile = \"p.json\"\nwindow = \"time\"\ntime_source = \"event\"\n[fleet]\nenabled = true\n"
    ))
    .expect("a fleet that can merge");
    assert_eq!(settings.fleet_name(), "g/events");
}
