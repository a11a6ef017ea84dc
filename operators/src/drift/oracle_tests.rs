//! Every case of the drift oracle (`tests/fixtures/drift-oracle`): KS, q10
//! and evidently PSI/KL must reproduce what scipy 1.17 and evidently 0.7
//! recorded. `DRIFT_ORACLE_DIR` overrides where the oracle is read from.

use std::path::PathBuf;

use serde_json::Value;

use super::binning::{CategoricalBinning, QuantileBinning};
use super::compare::{compare_text, BinningChoice, CompareParams, SampleKind};
use super::divergence::{divergences, Divergences, ZeroFill};
use super::evidently::EvidentlyBinning;
use super::ks::{ks_2samp, KsMethod, KsMode};
use super::kstwo::{kstwo_sf, KstwoBranch};
use super::smirnov::kolmogorov_sf;

const KS_TOL: f64 = 1e-9;
const DIV_TOL: f64 = 1e-6;

fn oracle_dir() -> PathBuf {
    match std::env::var("DRIFT_ORACLE_DIR") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/drift-oracle"
        )),
    }
}

fn load_expected() -> Value {
    let path = oracle_dir().join("expected.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad {}: {e}", path.display()))
}

fn lines(case: &Value, which: &str) -> Vec<String> {
    let rel = case["files"][which].as_str().expect("file name");
    let path = oracle_dir().join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines().map(str::to_string).collect()
}

fn numbers(lines: &[String]) -> Vec<f64> {
    lines
        .iter()
        .map(|l| l.trim().parse().expect("number"))
        .collect()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(f).collect()
}

fn ints(v: &Value) -> Vec<u64> {
    let arr = v.as_array().expect("array");
    arr.iter().map(|x| x.as_u64().expect("count")).collect()
}

fn close(what: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got:e}, want {want:e}"
    );
}

fn close_all(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        close(&format!("{what}[{i}]"), *g, *w, tol);
    }
}

fn method_name(m: KsMethod) -> &'static str {
    match m {
        KsMethod::Exact => "exact",
        KsMethod::Asymp => "asymp",
    }
}

fn check_ks(name: &str, case: &Value, r: &[f64], c: &[f64]) {
    let ks = &case["ks"];
    for (key, mode) in [
        ("auto", KsMode::Auto),
        ("exact", KsMode::Exact),
        ("asymp", KsMode::Asymp),
    ] {
        let want = &ks[key];
        let got = ks_2samp(r, c, mode).expect("ks");
        let what = format!("{name} ks.{key}");
        close(
            &format!("{what}.statistic"),
            got.statistic,
            f(&want["statistic"]),
            KS_TOL,
        );
        let want_p = f(&want["pvalue"]);
        close(&format!("{what}.pvalue"), got.pvalue, want_p, KS_TOL);
        // Absolute 1e-9 says nothing about p ~ 1e-76: ask for relative too.
        let rel = ((got.pvalue - want_p) / want_p).abs();
        assert!(rel < 1e-8, "{what}.pvalue relative error {rel:e}");
        assert_eq!(
            method_name(got.method),
            want["method_used"],
            "{what}.method"
        );
        assert_eq!(
            got.h,
            ks["statistic_rational"]["h"].as_u64().expect("h"),
            "{what}.h"
        );
        let lcm = ks["statistic_rational"]["lcm"].as_u64().expect("lcm");
        assert_eq!(got.lcm, lcm, "{what}.lcm");
    }
    let n_eff = ks["asymp_N_rounded"].as_u64().expect("N");
    let d = f(&ks["asymp"]["statistic"]);
    let (_, branch) = kstwo_sf(n_eff, d);
    let want_branch = match ks["asymp_scipy_branch"].as_str().expect("branch") {
        b if b.contains("PelzGood") => KstwoBranch::PelzGood,
        b if b.contains("smirnov") => KstwoBranch::TwiceSmirnov,
        b if b.contains("Pomeranz") => KstwoBranch::Pomeranz,
        b if b.contains("Durbin") || b.contains("DMTW") => KstwoBranch::Durbin,
        other => panic!("{name}: unknown branch {other}"),
    };
    assert_eq!(branch, want_branch, "{name} asymp branch");
    let limit = kolmogorov_sf(f(&ks["asymp_en"]).sqrt() * d);
    close(
        &format!("{name} kolmogorov limit"),
        limit,
        f(&ks["kolmogorov_limit_pvalue"]),
        1e-12,
    );
}

fn check_divergences(what: &str, got: &Divergences, want: &Value, all_kl: bool) {
    close_all(
        &format!("{what}.percents_ref"),
        &got.reference.values,
        &floats(&want["percents_ref_filled"]),
        1e-12,
    );
    close_all(
        &format!("{what}.percents_cur"),
        &got.current.values,
        &floats(&want["percents_cur_filled"]),
        1e-12,
    );
    close(&format!("{what}.psi"), got.psi, f(&want["psi"]), DIV_TOL);
    close(
        &format!("{what}.kl_ref_cur"),
        got.kl_ref_cur,
        f(&want["kl_ref_cur"]),
        DIV_TOL,
    );
    if all_kl {
        let unnorm = f(&want["kl_ref_cur_unnormalized"]);
        close(
            &format!("{what}.kl_unnorm"),
            got.kl_ref_cur_unnormalized,
            unnorm,
            DIV_TOL,
        );
        close(
            &format!("{what}.kl_cur_ref"),
            got.kl_cur_ref,
            f(&want["kl_cur_ref"]),
            DIV_TOL,
        );
    }
}

fn check_q10(name: &str, want: &Value, r: &[f64], c: &[f64]) {
    let binning = QuantileBinning::from_reference(r, QuantileBinning::DEFAULT_BINS).expect("q10");
    close_all(
        &format!("{name} q10.cuts"),
        binning.cuts(),
        &floats(&want["cuts"]),
        1e-12,
    );
    let (rc, cc) = (binning.counts(r), binning.counts(c));
    assert_eq!(rc, ints(&want["counts_ref"]), "{name} q10.counts_ref");
    assert_eq!(cc, ints(&want["counts_cur"]), "{name} q10.counts_cur");
    let div = divergences(&rc, &cc, ZeroFill::Q10).expect("q10 divergences");
    check_divergences(&format!("{name} q10"), &div, want, true);
}

fn check_evidently(name: &str, want: &Value, r: &[String], c: &[String], numeric: bool) {
    let (rc, cc) = if numeric {
        let (r, c) = (numbers(r), numbers(c));
        let binning = EvidentlyBinning::for_numeric(&r, &c).expect("evidently bins");
        match (&binning, want["binning"]["type"].as_str()) {
            (
                EvidentlyBinning::EqualWidth { edges },
                Some("numeric_sturges_equal_width_on_combined"),
            ) => {
                let want_edges = floats(&want["binning"]["edges"]);
                close_all(
                    &format!("{name} evidently.edges"),
                    edges,
                    &want_edges,
                    1e-12,
                );
                assert_eq!(
                    binning.n_bins() as u64,
                    want["binning"]["n_bins"].as_u64().expect("n")
                );
            }
            (
                EvidentlyBinning::DistinctValues { values },
                Some("value_counts_union_of_categories"),
            ) => {
                let cats = floats(&want["binning"]["categories"]);
                close_all(&format!("{name} evidently.categories"), values, &cats, 0.0);
            }
            (b, t) => panic!("{name}: binning {b:?} but oracle says {t:?}"),
        }
        (binning.counts(&r), binning.counts(&c))
    } else {
        let binning = CategoricalBinning::from_samples(r, c);
        let cats: Vec<&str> = want["binning"]["categories"]
            .as_array()
            .expect("categories")
            .iter()
            .map(|v| v.as_str().expect("category"))
            .collect();
        assert_eq!(binning.categories(), cats.as_slice(), "{name} categories");
        (binning.counts(r), binning.counts(c))
    };
    assert_eq!(rc, ints(&want["counts_ref"]), "{name} evidently.counts_ref");
    assert_eq!(cc, ints(&want["counts_cur"]), "{name} evidently.counts_cur");
    let div = divergences(&rc, &cc, ZeroFill::Evidently).expect("evidently divergences");
    assert_eq!(
        div.reference.fill,
        want["fill_ref"].as_f64(),
        "{name} fill_ref"
    );
    assert_eq!(
        div.current.fill,
        want["fill_cur"].as_f64(),
        "{name} fill_cur"
    );
    check_divergences(&format!("{name} evidently"), &div, want, false);
}

fn check_compare(name: &str, case: &Value, r: &[String], c: &[String]) {
    let numeric = case["kind"] == "numeric";
    for binning in [BinningChoice::Q10, BinningChoice::Evidently] {
        let params = CompareParams {
            binning,
            ..CompareParams::default()
        };
        let out = compare_text(r, c, &params).expect("compare");
        let kind = if numeric {
            SampleKind::Numeric
        } else {
            SampleKind::Categorical
        };
        assert_eq!(out.kind, kind, "{name} kind");
        assert_eq!(
            out.n_reference as u64,
            case["n_ref"].as_u64().expect("n_ref")
        );
        assert_eq!(out.n_current as u64, case["n_cur"].as_u64().expect("n_cur"));
        let section = match (binning, numeric) {
            (BinningChoice::Evidently, _) => &case["evidently_default"],
            (BinningChoice::Q10, true) => &case["q10_eps1e-4"],
            (BinningChoice::Q10, false) => &case["explicit_categories_eps1e-4"],
        };
        close(
            &format!("{name} compare psi"),
            out.psi.value,
            f(&section["psi"]),
            DIV_TOL,
        );
        close(
            &format!("{name} compare kl"),
            out.kl.value,
            f(&section["kl_ref_cur"]),
            DIV_TOL,
        );
        if binning == BinningChoice::Evidently {
            let psi_drift = &section["psi_drift_at_default_threshold_0.1"];
            assert_eq!(Some(out.psi.drift), psi_drift.as_bool(), "{name} psi drift");
            let kl_drift = &section["kl_drift_at_default_threshold_0.1"];
            assert_eq!(Some(out.kl.drift), kl_drift.as_bool(), "{name} kl drift");
        }
        match (&out.ks, numeric) {
            (Some(ks), true) => close(
                &format!("{name} compare ks"),
                ks.pvalue,
                f(&case["ks"]["auto"]["pvalue"]),
                KS_TOL,
            ),
            (None, false) => {}
            (ks, _) => panic!("{name}: unexpected ks {ks:?}"),
        }
    }
}

#[test]
fn every_oracle_case_is_reproduced() {
    let expected = load_expected();
    let cases = expected["cases"].as_object().expect("cases");
    assert!(!cases.is_empty(), "no oracle cases");
    for (name, case) in cases {
        let (r_lines, c_lines) = (lines(case, "ref"), lines(case, "cur"));
        assert_eq!(r_lines.len() as u64, case["n_ref"].as_u64().expect("n_ref"));
        assert_eq!(c_lines.len() as u64, case["n_cur"].as_u64().expect("n_cur"));
        let numeric = match case["kind"].as_str() {
            Some("numeric") => true,
            Some("categorical") => false,
            other => panic!("{name}: unknown kind {other:?}"),
        };
        if numeric {
            let (r, c) = (numbers(&r_lines), numbers(&c_lines));
            check_ks(name, case, &r, &c);
            check_q10(name, &case["q10_eps1e-4"], &r, &c);
        } else {
            assert!(case["ks"].is_null(), "{name}: categorical case with KS");
            let want = &case["explicit_categories_eps1e-4"];
            let binning = CategoricalBinning::from_samples(&r_lines, &c_lines);
            let (rc, cc) = (binning.counts(&r_lines), binning.counts(&c_lines));
            assert_eq!(rc, ints(&want["counts_ref"]), "{name} counts_ref");
            assert_eq!(cc, ints(&want["counts_cur"]), "{name} counts_cur");
            let div = divergences(&rc, &cc, ZeroFill::Q10).expect("divergences");
            check_divergences(&format!("{name} categories"), &div, want, true);
        }
        check_evidently(
            name,
            &case["evidently_default"],
            &r_lines,
            &c_lines,
            numeric,
        );
        check_compare(name, case, &r_lines, &c_lines);
        eprintln!("oracle case {name}: ok");
    }
}
