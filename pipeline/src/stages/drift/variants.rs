//! Drift per model variant: which output columns the drift monitor watches when a canary or a
//! shadow scores beside the serving model, and the shadow's agreement reports.
//!
//! The serving model's outputs keep their names, over the rows it scored; a variant's (and the
//! shadow's) outputs are watched as `OUTPUT@NAME` columns, over the rows that model scored (the
//! other rows are masked to null, which the monitor counts as missing). Every `OUTPUT@NAME` is
//! compared with the serving model's reference for OUTPUT: a canary drifting away from what the
//! serving model produced on the reference is exactly what a canary is watched for.
use std::sync::Arc;

use anyhow::Context;
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, BooleanArray, StructArray};
use arrow_schema::DataType;
use driftline_operators::drift::monitor::DriftOutcome;
use driftline_operators::drift::monitor::WindowBounds;
use driftline_operators::drift::profile::{ColumnRole, ReferenceProfile};
use serde::Serialize;

use crate::config::Settings;
use crate::models::shadow::Agreement;
use crate::stages::messages::DriftInput;

/// The names of the variants and shadow configured at startup: the columns the reference is
/// extended with. (A variant added by a later reload is scored and counted, but its outputs'
/// drift waits for a restart: the monitor's columns are fixed when it starts.)
pub fn variant_names(settings: &Settings) -> Vec<String> {
    let m = &settings.model;
    let mut names: Vec<String> = m.variants.iter().map(|v| v.name.clone()).collect();
    if !m.shadow.path.as_os_str().is_empty() {
        names.push(m.shadow.name.clone());
    }
    names
}

/// `profile` with each output column also under `OUTPUT@NAME` for every name in `names`.
pub fn with_variant_columns(profile: &ReferenceProfile, names: &[String]) -> ReferenceProfile {
    let mut extended = profile.clone();
    for name in names {
        for column in profile
            .columns
            .iter()
            .filter(|c| c.role == ColumnRole::Output && !c.name.contains('@'))
        {
            let variant_name = variant_column(&column.name, name);
            if profile.columns.iter().any(|c| c.name == variant_name) {
                continue; // the profile has its own reference for it
            }
            let mut clone = column.clone();
            clone.name = variant_name;
            extended.columns.push(clone);
        }
    }
    extended
}

/// `probabilities[1]` of variant `v` is `probabilities@v[1]` (as flattening `probabilities@v`
/// names it).
fn variant_column(column: &str, variant: &str) -> String {
    match column.split_once('[') {
        Some((base, rest)) => format!("{base}@{variant}[{rest}"),
        None => format!("{column}@{variant}"),
    }
}

/// The output columns to watch for one scored batch (see the module docs).
pub fn watched_outputs(input: &DriftInput) -> anyhow::Result<Vec<(String, ArrayRef)>> {
    let mut watched = Vec::with_capacity(input.outputs.len());
    match &input.variant_of_row {
        Some(variant_of_row) if input.variants.len() > 1 => {
            for (v, model) in input.variants.iter().enumerate() {
                let other_rows: BooleanArray = variant_of_row
                    .iter()
                    .map(|&r| Some(r as usize != v))
                    .collect();
                for (name, array) in &input.outputs {
                    let masked = null_where(array, &other_rows)
                        .with_context(|| format!("masking output `{name}` by variant"))?;
                    let column = match v {
                        0 => name.clone(),
                        _ => format!("{name}@{}", model.name),
                    };
                    watched.push((column, masked));
                }
            }
        }
        _ => watched.extend(input.outputs.iter().cloned()),
    }
    if let Some(shadow) = &input.shadow {
        for (name, array) in &shadow.outputs {
            watched.push((format!("{name}@{}", shadow.name), Arc::clone(array)));
        }
    }
    Ok(watched)
}

/// `array` with the rows where `condition` is true set to null (struct fields each, since the
/// drift columns of a struct read its fields).
fn null_where(array: &ArrayRef, condition: &BooleanArray) -> anyhow::Result<ArrayRef> {
    match array.data_type() {
        DataType::Struct(fields) => {
            let children = array
                .as_struct()
                .columns()
                .iter()
                .map(|c| null_where(c, condition))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let nullable = fields
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>();
            Ok(Arc::new(StructArray::try_new(
                nullable.into(),
                children,
                array.nulls().cloned(),
            )?))
        }
        _ => Ok(arrow_select::nullif::nullif(array.as_ref(), condition)?),
    }
}

/// A shadow's agreement with the serving model over the events since the previous window closed.
#[derive(Debug, Clone, Serialize)]
pub struct ShadowAgreementReport {
    /// Always `"shadow_agreement"`: tells these records apart from column reports on the topic.
    pub kind: &'static str,
    pub serving_model: String,
    pub shadow_model: String,
    /// The window whose close ended this count.
    pub window: WindowBounds,
    pub events: u64,
    pub labels_compared: u64,
    /// Share of labels the shadow agrees on; null when no label output is shared.
    pub label_agreement: Option<f64>,
    pub scores_compared: u64,
    /// Mean |shadow − serving| over the compared scores; null when no float output is shared.
    pub score_mean_abs_diff: Option<f64>,
}

/// Sums the shadow's agreement between window closes.
#[derive(Default)]
pub struct AgreementWindow {
    counts: Agreement,
    models: Option<(String, String)>,
}

impl AgreementWindow {
    pub fn observe(&mut self, input: &DriftInput) {
        if let Some(shadow) = &input.shadow {
            self.counts.add(&shadow.agreement);
            self.models = Some((input.variants[0].name.clone(), shadow.name.clone()));
        }
    }

    /// A report when `outcome` closed a window and a shadow scored since the last one.
    pub fn close(&mut self, outcome: &DriftOutcome) -> Option<ShadowAgreementReport> {
        let window = outcome.reports.last()?.window.clone();
        let (serving_model, shadow_model) = self.models.clone()?;
        let a = std::mem::take(&mut self.counts);
        (a.events > 0).then(|| ShadowAgreementReport {
            kind: "shadow_agreement",
            serving_model,
            shadow_model,
            window,
            events: a.events,
            labels_compared: a.labels_compared,
            label_agreement: a.label_agreement(),
            scores_compared: a.scores_compared,
            score_mean_abs_diff: a.score_mean_abs_diff(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{FixedSizeListArray, Float32Array, Int64Array};
    use arrow_schema::Field;
    use driftline_operators::drift::profile::ProfileBuilder;

    #[test]
    fn variant_columns_are_named_as_flattening_names_them() {
        assert_eq!(variant_column("score", "v2"), "score@v2");
        assert_eq!(
            variant_column("probabilities[1]", "v2"),
            "probabilities@v2[1]"
        );
    }

    #[test]
    fn masking_nulls_the_other_variants_rows_in_lists_and_struct_fields() {
        let list: ArrayRef = Arc::new(
            FixedSizeListArray::try_new(
                Arc::new(Field::new("item", DataType::Float32, false)),
                2,
                Arc::new(Float32Array::from(vec![0.1, 0.9, 0.2, 0.8, 0.3, 0.7])),
                None,
            )
            .expect("list"),
        );
        let zipmap: ArrayRef = Arc::new(StructArray::from(vec![(
            Arc::new(Field::new("1", DataType::Float32, false)),
            Arc::new(Float32Array::from(vec![0.9, 0.8, 0.7])) as ArrayRef,
        )]));
        let other_rows = BooleanArray::from(vec![false, true, false]);
        let masked = null_where(&list, &other_rows).expect("list");
        assert_eq!(
            (0..3).map(|r| masked.is_valid(r)).collect::<Vec<_>>(),
            [true, false, true]
        );
        let masked = null_where(&zipmap, &other_rows).expect("struct");
        let field = masked.as_struct().column(0).clone();
        assert_eq!(
            (0..3).map(|r| field.is_valid(r)).collect::<Vec<_>>(),
            [true, false, true],
            "the field itself, which drift reads"
        );
    }

    #[test]
    fn the_reference_gains_each_output_under_each_variant_once() {
        let feature: ArrayRef = Arc::new(Float32Array::from(vec![1.0, 2.0, 3.0, 4.0]));
        let label: ArrayRef = Arc::new(Int64Array::from(vec![0, 1, 0, 1]));
        let mut builder = ProfileBuilder::new(100, 2, 1);
        builder
            .add(&[
                ("x", ColumnRole::Feature, &feature),
                ("label", ColumnRole::Output, &label),
            ])
            .expect("add");
        let profile = builder.finish().expect("profile");
        let names = ["v2".to_string(), "shadow".to_string()];
        let extended = with_variant_columns(&profile, &names);
        let columns: Vec<&str> = extended.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(columns, ["x", "label", "label@v2", "label@shadow"]);
        // A profile that already has a variant's column keeps its own reference for it.
        let again = with_variant_columns(&extended, &names);
        assert_eq!(again.columns.len(), 4);
    }
}
