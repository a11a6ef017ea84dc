//! The models that score the stream: the serving model, its canary variants and a shadow.
//!
//! Without variants every event goes to the serving model. With variants, [`CanaryRouter`] sends
//! each event to one by its key; a batch is split by variant (Arrow `take`), each part scored by
//! its model, and the outputs put back in row order (Arrow `interleave`), so the rest of the
//! pipeline sees one batch and one set of output columns, plus which variant scored each row.
//! A shadow scores the whole batch again; its outputs travel beside the serving ones.
use std::sync::Arc;

use anyhow::{bail, Context};
use arrow_array::{Array, ArrayRef, UInt32Array};
use driftline_operators::batch::SourceBatch;
use driftline_operators::infer::{InferenceModel, OutputInfo};

use crate::config::Settings;
use crate::models::canary::CanaryRouter;
use crate::models::identity::ModelIdentity;
use crate::models::load::{
    check_same_outputs, load_checked, load_checked_spec, CheckedModel, ModelSpec,
};

/// A loaded model and who it is.
pub struct ServedModel {
    pub model: InferenceModel,
    pub identity: Arc<ModelIdentity>,
}

impl From<CheckedModel> for ServedModel {
    fn from(c: CheckedModel) -> Self {
        ServedModel {
            model: c.model,
            identity: Arc::new(c.identity),
        }
    }
}

/// What a model is for, in metrics (`driftline.role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelRole {
    Serving,
    Canary,
    Shadow,
}

impl ModelRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelRole::Serving => "serving",
            ModelRole::Canary => "canary",
            ModelRole::Shadow => "shadow",
        }
    }
}

/// One loaded model as metrics describe it.
#[derive(Debug, Clone)]
pub struct ServingEntry {
    pub role: ModelRole,
    /// Share of the traffic, in weight units (0 for a shadow).
    pub weight: u32,
    pub identity: Arc<ModelIdentity>,
}

/// A batch's scores.
pub struct Scores {
    /// One column per output, in row order, whichever variant scored the row.
    pub outputs: Vec<(String, ArrayRef)>,
    /// Per row, the index of the variant that scored it; `None` when one model scored all.
    pub variant_of_row: Option<Arc<[u8]>>,
}

/// The serving model, its variants and the shadow, as loaded from one `[model]` section.
pub struct ServingModels {
    /// `variants[0]` is the `[model]` section's own model; the rest are its canaries.
    variants: Vec<ServedModel>,
    /// The identities of `variants`, shared with every scored batch.
    identities: Arc<[Arc<ModelIdentity>]>,
    weights: Vec<u32>,
    router: CanaryRouter,
    shadow: Option<ServedModel>,
}

impl ServingModels {
    /// Loads and checks every model of `settings.model`. Variants and the shadow must have the
    /// serving model's outputs (and the same ZipMap classes); on reload, so must the serving
    /// model (`previous`).
    pub fn load(settings: &Settings, previous: Option<&[OutputInfo]>) -> anyhow::Result<Self> {
        let m = &settings.model;
        let serving = load_checked(settings, previous)?;
        let outputs = serving.model.outputs().to_vec();
        let types = serving.output_types.clone();
        let check_like_serving = |checked: CheckedModel, what: &str| -> anyhow::Result<_> {
            check_same_outputs(&outputs, checked.model.outputs())
                .and_then(|()| {
                    if checked.output_types != types {
                        bail!(
                            "its outputs' types {:?} differ from the serving model's {types:?}",
                            checked.output_types
                        );
                    }
                    Ok(())
                })
                .with_context(|| format!("{what} `{}`", checked.identity.name))?;
            Ok(ServedModel::from(checked))
        };
        let mut variants = vec![ServedModel::from(serving)];
        let mut weights = vec![m.weight];
        for v in &m.variants {
            let spec = ModelSpec {
                path: &v.path,
                name: &v.name,
                version: &v.version,
            };
            let checked = load_checked_spec(settings, spec, None)
                .with_context(|| format!("canary variant `{}`", v.name))?;
            variants.push(check_like_serving(checked, "canary variant")?);
            weights.push(v.weight);
        }
        let shadow = match m.shadow.path.as_os_str().is_empty() {
            true => None,
            false => {
                let spec = ModelSpec {
                    path: &m.shadow.path,
                    name: &m.shadow.name,
                    version: &m.shadow.version,
                };
                let checked = load_checked_spec(settings, spec, None).context("shadow model")?;
                Some(check_like_serving(checked, "shadow model")?)
            }
        };
        let identities = variants.iter().map(|v| Arc::clone(&v.identity)).collect();
        Ok(ServingModels {
            router: CanaryRouter::new(&weights),
            variants,
            identities,
            weights,
            shadow,
        })
    }

    /// The outputs every model here has (the serving model's).
    pub fn outputs(&self) -> &[OutputInfo] {
        self.variants[0].model.outputs()
    }

    /// The `[model]` section's own model.
    pub fn serving_identity(&self) -> &Arc<ModelIdentity> {
        &self.variants[0].identity
    }

    /// The variants' identities, serving model first (index = a row's variant).
    pub fn identities(&self) -> &Arc<[Arc<ModelIdentity>]> {
        &self.identities
    }

    pub fn shadow_identity(&self) -> Option<&Arc<ModelIdentity>> {
        self.shadow.as_ref().map(|s| &s.identity)
    }

    pub fn execution_provider(&self) -> &'static str {
        self.variants[0].model.provider()
    }

    /// Every model with its role and weight, for metrics.
    pub fn entries(&self) -> Vec<ServingEntry> {
        let mut entries: Vec<ServingEntry> = self
            .variants
            .iter()
            .zip(&self.weights)
            .enumerate()
            .map(|(i, (v, &weight))| ServingEntry {
                role: if i == 0 {
                    ModelRole::Serving
                } else {
                    ModelRole::Canary
                },
                weight,
                identity: Arc::clone(&v.identity),
            })
            .collect();
        if let Some(s) = &self.shadow {
            entries.push(ServingEntry {
                role: ModelRole::Shadow,
                weight: 0,
                identity: Arc::clone(&s.identity),
            });
        }
        entries
    }

    /// One line for logs: `name version (weight)` of each model.
    pub fn describe(&self) -> String {
        self.entries()
            .iter()
            .map(|e| {
                format!(
                    "{} {} {} ({})",
                    e.role.as_str(),
                    e.identity.name,
                    e.identity.version,
                    e.weight
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Scores the serving models only (the shadow is [`ServingModels::score_shadow`]).
    pub fn score(&mut self, batch: &SourceBatch) -> anyhow::Result<Scores> {
        if self.variants.len() == 1 {
            let outputs = self.variants[0].model.run(&batch.batch)?;
            return Ok(Scores {
                outputs,
                variant_of_row: None,
            });
        }
        let variant_of_row: Arc<[u8]> = self.router.route(batch).into();
        let mut rows_of: Vec<Vec<u32>> = vec![Vec::new(); self.variants.len()];
        for (row, &v) in variant_of_row.iter().enumerate() {
            rows_of[v as usize].push(row as u32);
        }
        if let Some(only) = rows_of.iter().position(|r| r.len() == batch.num_rows()) {
            let outputs = self.variants[only].model.run(&batch.batch)?;
            return Ok(Scores {
                outputs,
                variant_of_row: Some(variant_of_row),
            });
        }
        // Score each variant's rows, then put the outputs back in row order.
        let mut parts: Vec<Vec<(String, ArrayRef)>> = Vec::new();
        let mut part_of_variant = vec![usize::MAX; self.variants.len()];
        for (v, rows) in rows_of.iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            let indices = UInt32Array::from(rows.clone());
            let part = arrow_select::take::take_record_batch(&batch.batch, &indices)?;
            part_of_variant[v] = parts.len();
            parts.push(self.variants[v].model.run(&part)?);
        }
        let mut next_in_part = vec![0usize; parts.len()];
        let positions: Vec<(usize, usize)> = variant_of_row
            .iter()
            .map(|&v| {
                let part = part_of_variant[v as usize];
                let i = next_in_part[part];
                next_in_part[part] += 1;
                (part, i)
            })
            .collect();
        let mut outputs = Vec::with_capacity(self.outputs().len());
        for (j, info) in self.outputs().iter().enumerate() {
            let columns: Vec<&dyn Array> = parts.iter().map(|p| p[j].1.as_ref()).collect();
            let merged = arrow_select::interleave::interleave(&columns, &positions)
                .with_context(|| format!("merging output `{}` across variants", info.name))?;
            outputs.push((info.name.clone(), merged));
        }
        Ok(Scores {
            outputs,
            variant_of_row: Some(variant_of_row),
        })
    }

    /// The shadow's outputs for the whole batch, if there is a shadow.
    pub fn score_shadow(
        &mut self,
        batch: &SourceBatch,
    ) -> anyhow::Result<Option<Vec<(String, ArrayRef)>>> {
        match &mut self.shadow {
            Some(shadow) => Ok(Some(
                shadow.model.run(&batch.batch).context("shadow model")?,
            )),
            None => Ok(None),
        }
    }
}
