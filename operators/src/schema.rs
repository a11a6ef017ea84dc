//! The event schema from config: which JSON fields an event carries, their types, and the Arrow
//! schema that decoded batches have. The first two Arrow columns are always the event id and the
//! event timestamp; the features follow in config order.
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

/// Name of the Arrow column holding the event id.
pub const ID_COLUMN: &str = "__id";
/// Name of the Arrow column holding the event timestamp (epoch milliseconds).
pub const TIMESTAMP_COLUMN: &str = "__event_timestamp";
/// Number of leading non-feature columns in every decoded batch.
pub const LEADING_COLUMNS: usize = 2;

/// The type of one feature, as written in config. Read through [`FeatureType::from_name`], so a
/// wrong name is answered with the valid ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum FeatureType {
    F32,
    F64,
    I64,
    Bool,
    /// A string category (for example a device model); drift is computed over its categories.
    Category,
}

impl FeatureType {
    /// The names config accepts, in the order the docs list them.
    pub const NAMES: [&'static str; 5] = ["f32", "f64", "i64", "bool", "category"];

    pub fn from_name(name: &str) -> Result<FeatureType, String> {
        match name {
            "f32" => Ok(FeatureType::F32),
            "f64" => Ok(FeatureType::F64),
            "i64" => Ok(FeatureType::I64),
            "bool" => Ok(FeatureType::Bool),
            "category" => Ok(FeatureType::Category),
            other => Err(format!(
                "unknown feature type `{other}`: the types are {}",
                FeatureType::NAMES.join(", ")
            )),
        }
    }

    pub fn arrow_type(self) -> DataType {
        match self {
            FeatureType::F32 => DataType::Float32,
            FeatureType::F64 => DataType::Float64,
            FeatureType::I64 => DataType::Int64,
            FeatureType::Bool => DataType::Boolean,
            FeatureType::Category => DataType::Utf8,
        }
    }

    /// Whether the feature can feed a numeric model input tensor.
    pub fn is_numeric(self) -> bool {
        !matches!(self, FeatureType::Category)
    }
}

impl TryFrom<String> for FeatureType {
    type Error = String;
    fn try_from(name: String) -> Result<Self, String> {
        FeatureType::from_name(&name)
    }
}

/// One feature of the event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    /// JSON field name in the event; also the Arrow column name.
    pub name: String,
    /// Value type; a value of another JSON type dead-letters the event.
    #[serde(rename = "type")]
    pub kind: FeatureType,
    /// A required feature that is missing or null dead-letters the event.
    #[serde(default = "default_true")]
    pub required: bool,
}

fn default_true() -> bool {
    true
}

/// The event schema: id, timestamp and features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSchema {
    /// JSON field with the event id (a string or an integer); required in every event.
    pub id_field: String,
    /// JSON field with the event time as integer epoch milliseconds.
    pub timestamp_field: String,
    /// When false, an event without a timestamp takes its Kafka record's timestamp.
    #[serde(default)]
    pub timestamp_required: bool,
    pub features: Vec<FeatureSpec>,
}

impl EventSchema {
    /// Problems that make the schema unusable, one line each (empty when it is fine).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.features.is_empty() {
            problems.push("schema.features is empty: at least one feature is needed".to_string());
        }
        let mut seen = std::collections::HashSet::new();
        for name in [&self.id_field, &self.timestamp_field]
            .into_iter()
            .chain(self.features.iter().map(|f| &f.name))
        {
            if name.is_empty() {
                problems.push("schema: a field name is empty".to_string());
            } else if !seen.insert(name.as_str()) {
                problems.push(format!("schema: field `{name}` is named twice"));
            }
        }
        problems
    }

    /// The Arrow schema of decoded batches.
    pub fn arrow_schema(&self) -> SchemaRef {
        let mut fields = vec![
            Field::new(ID_COLUMN, DataType::Utf8, false),
            Field::new(TIMESTAMP_COLUMN, DataType::Int64, false),
        ];
        fields.extend(
            self.features
                .iter()
                .map(|f| Field::new(&f.name, f.kind.arrow_type(), !f.required)),
        );
        Arc::new(Schema::new(fields))
    }

    /// Index of a feature by name.
    pub fn feature_index(&self, name: &str) -> Option<usize> {
        self.features.iter().position(|f| f.name == name)
    }
}
