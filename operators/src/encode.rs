//! One prediction per input row, as a JSON object:
//! `{"id":…,"model":…,"model_version":…,"model_sha256":…,"event_timestamp":…,"processing_timestamp":…,"outputs":{…}}`.
//! Output names come from the model; scalar outputs are numbers (strings for string labels),
//! `[N, K]` outputs arrays, ZipMap outputs (struct columns) objects keyed by class, as Python
//! onnxruntime's list of dicts reads in JSON: `{"0":0.9,"1":0.1}`.
//! Non-finite floats are written as `null` (JSON has no NaN). Numbers are written with
//! itoa/ryu into one reused buffer: no per-row allocation.
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;

/// Writes predictions for one model identity.
pub struct PredictionEncoder {
    /// `{"id":` is written per row; this holds
    /// `,"model":"…","model_version":"…","model_sha256":"…","event_timestamp":`.
    model_part: Vec<u8>,
    ryu: ryu::Buffer,
    itoa: itoa::Buffer,
}

impl PredictionEncoder {
    /// For the model called `model_name`, at `model_version`, whose file hashes to `model_sha256`.
    pub fn new(model_name: &str, model_version: &str, model_sha256: &str) -> Self {
        let mut model_part = Vec::new();
        model_part.extend_from_slice(b",\"model\":");
        write_json_string(&mut model_part, model_name);
        model_part.extend_from_slice(b",\"model_version\":");
        write_json_string(&mut model_part, model_version);
        model_part.extend_from_slice(b",\"model_sha256\":");
        write_json_string(&mut model_part, model_sha256);
        model_part.extend_from_slice(b",\"event_timestamp\":");
        PredictionEncoder {
            model_part,
            ryu: ryu::Buffer::new(),
            itoa: itoa::Buffer::new(),
        }
    }

    /// Writes row `row` of `inputs` with its `outputs` into `out` (which is cleared first).
    pub fn encode_row(
        &mut self,
        inputs: &RecordBatch,
        outputs: &[(String, ArrayRef)],
        row: usize,
        processing_ms: i64,
        out: &mut Vec<u8>,
    ) {
        out.clear();
        out.extend_from_slice(b"{\"id\":");
        write_json_string(out, inputs.column(0).as_string::<i32>().value(row));
        out.extend_from_slice(&self.model_part);
        out.extend_from_slice(
            self.itoa
                .format(inputs.column(1).as_primitive::<Int64Type>().value(row))
                .as_bytes(),
        );
        out.extend_from_slice(b",\"processing_timestamp\":");
        out.extend_from_slice(self.itoa.format(processing_ms).as_bytes());
        out.extend_from_slice(b",\"outputs\":{");
        for (i, (name, column)) in outputs.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_json_string(out, name);
            out.push(b':');
            self.write_value(out, column, row);
        }
        out.extend_from_slice(b"}}");
    }

    fn write_value(&mut self, out: &mut Vec<u8>, column: &ArrayRef, row: usize) {
        match column.data_type() {
            DataType::FixedSizeList(_, width) => {
                let list = column.as_fixed_size_list();
                let values = list.values();
                let start = row * *width as usize;
                out.push(b'[');
                for k in 0..*width as usize {
                    if k > 0 {
                        out.push(b',');
                    }
                    self.write_scalar(out, values, start + k);
                }
                out.push(b']');
            }
            DataType::Struct(fields) => {
                let columns = column.as_struct().columns();
                out.push(b'{');
                for (k, (field, child)) in fields.iter().zip(columns).enumerate() {
                    if k > 0 {
                        out.push(b',');
                    }
                    write_json_string(out, field.name());
                    out.push(b':');
                    self.write_scalar(out, child.as_ref(), row);
                }
                out.push(b'}');
            }
            _ => self.write_scalar(out, column, row),
        }
    }

    fn write_scalar(&mut self, out: &mut Vec<u8>, column: &dyn Array, i: usize) {
        if column.is_null(i) {
            out.extend_from_slice(b"null");
            return;
        }
        match column.data_type() {
            DataType::Float32 => self.write_float(
                out,
                column.as_primitive::<Float32Type>().value(i) as f64,
                true,
            ),
            DataType::Float64 => {
                self.write_float(out, column.as_primitive::<Float64Type>().value(i), false)
            }
            DataType::Int64 => out.extend_from_slice(
                self.itoa
                    .format(column.as_primitive::<Int64Type>().value(i))
                    .as_bytes(),
            ),
            DataType::Int32 => out.extend_from_slice(
                self.itoa
                    .format(column.as_primitive::<Int32Type>().value(i))
                    .as_bytes(),
            ),
            DataType::Utf8 => write_json_string(out, column.as_string::<i32>().value(i)),
            _ => out.extend_from_slice(b"null"),
        }
    }

    fn write_float(&mut self, out: &mut Vec<u8>, x: f64, single: bool) {
        if !x.is_finite() {
            out.extend_from_slice(b"null");
        } else if single {
            // Shortest text that reads back as the same f32, not the f64 widening's digits.
            out.extend_from_slice(self.ryu.format_finite(x as f32).as_bytes());
        } else {
            out.extend_from_slice(self.ryu.format_finite(x).as_bytes());
        }
    }
}

/// Appends `s` as a JSON string literal.
pub fn write_json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        match escape {
            Some(e) => out.extend_from_slice(e),
            None => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{FixedSizeListArray, Float32Array, Int64Array, StringArray};
    use arrow_schema::{Field, Schema};
    use std::sync::Arc;

    /// Input rows with just the leading id and timestamp columns.
    fn inputs(ids: Vec<&str>, timestamps: Vec<i64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("__id", DataType::Utf8, false),
            Field::new("__ts", DataType::Int64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(ids)),
                Arc::new(Int64Array::from(timestamps)),
            ],
        )
        .expect("batch")
    }

    #[test]
    fn encodes_scalars_lists_and_escapes() {
        let inputs = inputs(vec!["a\"b\u{1}", "z"], vec![7, 8]);
        let probs = FixedSizeListArray::try_new(
            Arc::new(Field::new("item", DataType::Float32, false)),
            2,
            Arc::new(Float32Array::from(vec![0.25, 0.75, 0.1, f32::NAN])),
            None,
        )
        .expect("list");
        let outputs: Vec<(String, ArrayRef)> = vec![
            ("label".into(), Arc::new(Int64Array::from(vec![1, 0]))),
            ("probabilities".into(), Arc::new(probs)),
        ];
        let mut enc = PredictionEncoder::new("demo", "3", "ab12");
        let mut out = Vec::new();
        enc.encode_row(&inputs, &outputs, 0, 99, &mut out);
        assert_eq!(
            String::from_utf8(out.clone()).expect("utf8"),
            r#"{"id":"a\"b\u0001","model":"demo","model_version":"3","model_sha256":"ab12","event_timestamp":7,"processing_timestamp":99,"outputs":{"label":1,"probabilities":[0.25,0.75]}}"#
        );
        enc.encode_row(&inputs, &outputs, 1, 100, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(
            v["outputs"]["probabilities"][0].as_f64(),
            Some(0.1f32 as f64)
                .map(|x| (x * 1e7).round() / 1e7)
                .map(|_| 0.1)
        );
        assert!(v["outputs"]["probabilities"][1].is_null());
    }

    #[test]
    fn encodes_zipmap_structs_as_objects_and_string_labels_as_strings() {
        use arrow_array::StructArray;
        let inputs = inputs(vec!["a"], vec![7]);
        let probabilities = StructArray::from(vec![
            (
                Arc::new(Field::new("0", DataType::Float32, false)),
                Arc::new(Float32Array::from(vec![0.25])) as ArrayRef,
            ),
            (
                Arc::new(Field::new("setosa \"x\"", DataType::Float32, false)),
                Arc::new(Float32Array::from(vec![0.75])) as ArrayRef,
            ),
        ]);
        let outputs: Vec<(String, ArrayRef)> = vec![
            ("label".into(), Arc::new(StringArray::from(vec!["setosa"]))),
            ("probabilities".into(), Arc::new(probabilities)),
        ];
        let mut out = Vec::new();
        PredictionEncoder::new("m", "1", "ab").encode_row(&inputs, &outputs, 0, 9, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(v["outputs"]["label"], "setosa");
        assert_eq!(v["outputs"]["probabilities"]["0"].as_f64(), Some(0.25));
        assert_eq!(
            v["outputs"]["probabilities"]["setosa \"x\""].as_f64(),
            Some(0.75)
        );
    }
}
