//! `driftline drift`: compares a reference sample with a current one, offline, with the numbers
//! scipy's `ks_2samp` and evidently give (see `operators/src/drift/compare.rs`). This is how a
//! user checks a threshold by hand, and how the oracle tests run.
//!
//! Input files hold one value per line, or with `--column` a CSV (header row) or JSONL file.
//! Empty lines and missing values are skipped. A sample is numeric when every value parses as a
//! finite number; anything else is compared as categories.
use std::path::Path;

use crate::cli::input::split_csv;
use anyhow::{bail, Context};
use driftline_operators::drift::{compare_text, BinningChoice, CompareParams, DriftComparison};

/// Reads the values of one sample.
pub fn read_values(path: &Path, column: Option<&str>) -> anyhow::Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let Some(column) = column else {
        return Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect());
    };
    let is_jsonl = path
        .extension()
        .is_some_and(|e| e == "jsonl" || e == "json" || e == "ndjson");
    if is_jsonl {
        let mut values = Vec::new();
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let v: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("{} line {}", path.display(), i + 1))?;
            match v.get(column) {
                Some(serde_json::Value::String(s)) => values.push(s.clone()),
                Some(serde_json::Value::Null) | None => {}
                Some(other) => values.push(other.to_string()),
            }
        }
        return Ok(values);
    }
    let mut lines = text.lines();
    let header = split_csv(lines.next().unwrap_or_default());
    let Some(index) = header.iter().position(|h| h == column) else {
        bail!(
            "{} has no column `{column}` (columns: {})",
            path.display(),
            header.join(", ")
        );
    };
    Ok(lines
        .filter_map(|l| split_csv(l).into_iter().nth(index))
        .filter(|v| !v.is_empty())
        .collect())
}

pub struct DriftRequest<'a> {
    pub reference: &'a Path,
    pub current: &'a Path,
    pub column: Option<&'a str>,
    pub binning: &'a str,
    pub bins: usize,
    pub psi_threshold: f64,
    pub kl_threshold: f64,
}

pub fn compare(request: &DriftRequest<'_>) -> anyhow::Result<DriftComparison> {
    let reference = read_values(request.reference, request.column)?;
    let current = read_values(request.current, request.column)?;
    let params = CompareParams {
        binning: request.binning.parse::<BinningChoice>()?,
        bins: request.bins,
        psi_threshold: request.psi_threshold,
        kl_threshold: request.kl_threshold,
        ..CompareParams::default()
    };
    Ok(compare_text(&reference, &current, &params)?)
}

/// The comparison for people.
pub fn table(c: &DriftComparison) -> String {
    let verdict = |d: bool| if d { "DRIFT" } else { "ok" };
    let mut out = format!(
        "reference {} values, current {} values, {:?}, binning {:?}\n{:<10} {:>14} {:>12}  verdict\n",
        c.n_reference, c.n_current, c.kind, c.binning, "statistic", "value", "threshold"
    );
    if let Some(ks) = &c.ks {
        out.push_str(&format!(
            "{:<10} {:>14.6} {:>12}  D = {:.6}, p by {:?}; {}\n",
            "KS p-value",
            ks.pvalue,
            "0.05",
            ks.statistic,
            ks.method,
            verdict(ks.pvalue <= 0.05)
        ));
    }
    out.push_str(&format!(
        "{:<10} {:>14.6} {:>12}  {}\n",
        "PSI",
        c.psi.value,
        c.psi.threshold,
        verdict(c.psi.drift)
    ));
    out.push_str(&format!(
        "{:<10} {:>14.6} {:>12}  {}\n",
        "KL",
        c.kl.value,
        c.kl.threshold,
        verdict(c.kl.drift)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_jsonl_columns_are_read() {
        let dir = tempfile::tempdir().expect("dir");
        let csv = dir.path().join("a.csv");
        std::fs::write(
            &csv,
            "id,temp,site\n1,20.5,\"a,b\"\n2,,x\n3,21,\"say \"\"hi\"\"\"\n",
        )
        .expect("write");
        assert_eq!(
            read_values(&csv, Some("temp")).expect("csv"),
            vec!["20.5", "21"]
        );
        assert_eq!(
            read_values(&csv, Some("site")).expect("csv"),
            vec!["a,b", "x", "say \"hi\""]
        );
        assert!(read_values(&csv, Some("nope")).is_err());
        let jsonl = dir.path().join("a.jsonl");
        std::fs::write(
            &jsonl,
            "{\"t\":1.5,\"c\":\"x\"}\n\n{\"t\":null}\n{\"t\":2}\n",
        )
        .expect("write");
        assert_eq!(
            read_values(&jsonl, Some("t")).expect("jsonl"),
            vec!["1.5", "2"]
        );
        let plain = dir.path().join("a.txt");
        std::fs::write(&plain, "1\n\n2\r\n").expect("write");
        assert_eq!(read_values(&plain, None).expect("plain"), vec!["1", "2"]);
    }
}
