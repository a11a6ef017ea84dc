//! Reading sample files for the offline commands (`profile`, `batch`, `gate`, `drift`): JSONL,
//! CSV and Parquet, turned into JSON events for the same decoder as the stream, so one set of
//! rules decides what is valid.
use std::path::Path;

use anyhow::Context;

/// A file's events as JSON payloads, each with its record number (the line in JSONL and CSV
/// files, counting from 1; the row, from 1, in Parquet), by file extension: `.parquet`,
/// `.csv`, else JSONL. JSONL lines are kept as bytes, so that one line of invalid UTF-8 is one
/// rejected event, not an unreadable file; blank lines are skipped.
pub fn read_events(input: &Path) -> anyhow::Result<Vec<(u64, Vec<u8>)>> {
    let extension = input
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    let numbered = |events: Vec<Vec<u8>>| (1..).zip(events).collect();
    match extension {
        "parquet" => Ok(numbered(parquet_as_json(input)?)),
        "csv" => {
            let text = std::fs::read_to_string(input)
                .with_context(|| format!("reading {}", input.display()))?;
            Ok(numbered(csv_as_json(&text)))
        }
        _ => {
            let bytes =
                std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
            Ok((1..)
                .zip(bytes.split(|b| *b == b'\n'))
                .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
                .map(|(n, line)| (n, line.strip_suffix(b"\r").unwrap_or(line).to_vec()))
                .collect())
        }
    }
}

/// CSV rows as JSON objects keyed by the header; values that parse as numbers become numbers.
fn csv_as_json(text: &str) -> Vec<Vec<u8>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines
        .next()
        .map(|h| h.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_default();
    lines
        .map(|line| {
            let object: serde_json::Map<String, serde_json::Value> = header
                .iter()
                .zip(split_csv(line))
                .map(|(k, v)| {
                    let v = v.trim();
                    // Numbers as JSON numbers, so numeric features decode; the rest as strings.
                    let value = match v.parse::<i64>() {
                        Ok(i) => serde_json::Value::from(i),
                        Err(_) => v
                            .parse::<f64>()
                            .ok()
                            .and_then(serde_json::Number::from_f64)
                            .map_or_else(|| serde_json::Value::from(v), serde_json::Value::Number),
                    };
                    (k.clone(), value)
                })
                .collect();
            serde_json::to_vec(&object).unwrap_or_default()
        })
        .collect()
}

/// Parquet rows as JSON objects keyed by column name (numbers, strings, booleans, nulls).
fn parquet_as_json(path: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type};
    use arrow_array::Array;
    use arrow_schema::DataType;
    use serde_json::Value;

    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?.build()?;
    let mut events = Vec::new();
    for batch in reader {
        let batch = batch?;
        let schema = batch.schema();
        for row in 0..batch.num_rows() {
            let mut object = serde_json::Map::new();
            for (field, column) in schema.fields().iter().zip(batch.columns()) {
                let value = if column.is_null(row) {
                    Value::Null
                } else {
                    match column.data_type() {
                        DataType::Float64 => serde_json::Number::from_f64(
                            column.as_primitive::<Float64Type>().value(row),
                        )
                        .map_or(Value::Null, Value::Number),
                        DataType::Float32 => serde_json::Number::from_f64(
                            column.as_primitive::<Float32Type>().value(row) as f64,
                        )
                        .map_or(Value::Null, Value::Number),
                        DataType::Int64 => {
                            Value::from(column.as_primitive::<Int64Type>().value(row))
                        }
                        DataType::Int32 => {
                            Value::from(column.as_primitive::<Int32Type>().value(row))
                        }
                        DataType::Boolean => Value::from(column.as_boolean().value(row)),
                        DataType::Utf8 => Value::from(column.as_string::<i32>().value(row)),
                        DataType::LargeUtf8 => Value::from(column.as_string::<i64>().value(row)),
                        // Other types cannot be features; the decoder ignores unknown fields.
                        _ => continue,
                    }
                };
                object.insert(field.name().clone(), value);
            }
            events.push(serde_json::to_vec(&object)?);
        }
    }
    Ok(events)
}

/// Splits one CSV line, honouring double-quoted fields with `""` escapes.
pub fn split_csv(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                if let Some(f) = fields.last_mut() {
                    f.push('"');
                }
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => {
                if let Some(f) = fields.last_mut() {
                    f.push(c);
                }
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_become_events_with_numbers_as_numbers() {
        let events =
            csv_as_json("device_id,ts,temperature,site\nd1,17,21.5,\"a,b\"\n\nd2,18,x,c\n");
        let parsed: Vec<serde_json::Value> = events
            .iter()
            .map(|e| serde_json::from_slice(e).expect("json"))
            .collect();
        assert_eq!(parsed.len(), 2);
        assert_eq!(
            parsed[0],
            serde_json::json!({"device_id": "d1", "ts": 17, "temperature": 21.5, "site": "a,b"})
        );
        assert_eq!(
            parsed[1]["temperature"], "x",
            "a non-number stays a string, and the decoder will reject it"
        );
    }

    #[test]
    fn parquet_rows_become_events() {
        use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
        use std::sync::Arc;
        let batch = RecordBatch::try_from_iter([
            (
                "device_id",
                Arc::new(StringArray::from(vec![Some("d1"), Some("d2")])) as ArrayRef,
            ),
            ("ts", Arc::new(Int64Array::from(vec![17, 18])) as ArrayRef),
            (
                "temperature",
                Arc::new(Float64Array::from(vec![Some(21.5), None])) as ArrayRef,
            ),
        ])
        .expect("batch");
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("sample.parquet");
        let file = std::fs::File::create(&path).expect("create");
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).expect("writer");
        writer.write(&batch).expect("write");
        writer.close().expect("close");
        let events = parquet_as_json(&path).expect("read parquet");
        let parsed: Vec<serde_json::Value> = events
            .iter()
            .map(|e| serde_json::from_slice(e).expect("json"))
            .collect();
        assert_eq!(
            parsed,
            vec![
                serde_json::json!({"device_id": "d1", "ts": 17, "temperature": 21.5}),
                serde_json::json!({"device_id": "d2", "ts": 18, "temperature": null}),
            ]
        );
    }
}
