//! Between Arrow and ONNX Runtime tensors: feature columns into one reused row-major buffer per
//! model input (nulls → NaN, booleans → 0/1), and output values into Arrow columns.
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int64Type};
use arrow_array::{
    Array, ArrayRef, FixedSizeListArray, Float32Array, Float64Array, Int32Array, Int64Array,
    RecordBatch, StringArray, StructArray,
};
use arrow_schema::{DataType, Field, Fields};
use ort::value::{DynMapValueType, TensorElementType};

use super::{run_err, InferError, InputElement, InputPlan, OutputInfo};

/// Writes the plan's columns into its row-major buffer.
pub(super) fn fill_input(plan: &mut InputPlan, batch: &RecordBatch) -> Result<(), InferError> {
    let rows = batch.num_rows();
    let width = plan.columns.len();
    match plan.element {
        InputElement::F32 => {
            plan.f32_buf.clear();
            plan.f32_buf.resize(rows * width, 0.0);
            for (j, &c) in plan.columns.iter().enumerate() {
                scatter_column(batch.column(c), &mut plan.f32_buf, j, width, |x| x as f32)?;
            }
        }
        InputElement::F64 => {
            plan.f64_buf.clear();
            plan.f64_buf.resize(rows * width, 0.0);
            for (j, &c) in plan.columns.iter().enumerate() {
                scatter_column(batch.column(c), &mut plan.f64_buf, j, width, |x| x)?;
            }
        }
    }
    Ok(())
}

/// Copies one column into position `j` of every row of a row-major buffer.
fn scatter_column<T: Copy>(
    column: &ArrayRef,
    out: &mut [T],
    j: usize,
    width: usize,
    from_f64: impl Fn(f64) -> T,
) -> Result<(), InferError> {
    let nan = from_f64(f64::NAN);
    macro_rules! scatter {
        ($array:expr, $conv:expr) => {{
            let a = $array;
            for (i, slot) in out.iter_mut().skip(j).step_by(width).enumerate() {
                *slot = if a.is_valid(i) {
                    $conv(a.value(i))
                } else {
                    nan
                };
            }
        }};
    }
    match column.data_type() {
        DataType::Float32 => {
            let a = column.as_primitive::<Float32Type>();
            if a.null_count() == 0 {
                // The common case: a straight strided copy the compiler can vectorise.
                for (slot, &v) in out.iter_mut().skip(j).step_by(width).zip(a.values().iter()) {
                    *slot = from_f64(v as f64);
                }
            } else {
                scatter!(a, |v: f32| from_f64(v as f64))
            }
        }
        DataType::Float64 => scatter!(column.as_primitive::<Float64Type>(), &from_f64),
        DataType::Int64 => scatter!(column.as_primitive::<Int64Type>(), |v: i64| from_f64(
            v as f64
        )),
        DataType::Boolean => scatter!(column.as_boolean(), |v: bool| from_f64(if v {
            1.0
        } else {
            0.0
        })),
        other => {
            return Err(InferError::Run(format!(
                "column of type {other} cannot feed a numeric tensor"
            )))
        }
    }
    Ok(())
}

/// Turns one output value into an Arrow column of `rows` entries.
pub(super) fn output_column(
    value: &ort::value::DynValue,
    info: &OutputInfo,
    rows: usize,
) -> Result<ArrayRef, InferError> {
    if let Some(key) = info.map_key {
        return map_sequence_column(value, info, key, rows);
    }
    macro_rules! column {
        ($t:ty, $array:ty, $dt:expr) => {{
            let (shape, data) = value.try_extract_tensor::<$t>().map_err(run_err)?;
            let width = tensor_width(shape, rows, &info.name)?;
            let values = <$array>::from(data.to_vec());
            if width == 1 {
                Arc::new(values) as ArrayRef
            } else {
                let field = Arc::new(Field::new("item", $dt, false));
                Arc::new(
                    FixedSizeListArray::try_new(field, width as i32, Arc::new(values), None)
                        .map_err(run_err)?,
                ) as ArrayRef
            }
        }};
    }
    Ok(match info.element {
        TensorElementType::Float32 => column!(f32, Float32Array, DataType::Float32),
        TensorElementType::Float64 => column!(f64, Float64Array, DataType::Float64),
        TensorElementType::Int64 => column!(i64, Int64Array, DataType::Int64),
        TensorElementType::Int32 => column!(i32, Int32Array, DataType::Int32),
        TensorElementType::String => {
            let (shape, strings) = value.try_extract_strings().map_err(run_err)?;
            if tensor_width(shape, rows, &info.name)? != 1 {
                return Err(InferError::Run(format!(
                    "output `{}` is a string matrix; only one string per row is supported",
                    info.name
                )));
            }
            Arc::new(StringArray::from(strings)) as ArrayRef
        }
        other => {
            return Err(InferError::Run(format!(
                "output `{}` has unsupported type {other}",
                info.name
            )))
        }
    })
}

fn tensor_width(shape: &ort::value::Shape, rows: usize, name: &str) -> Result<usize, InferError> {
    let dims: Vec<i64> = shape.iter().copied().collect();
    match dims.as_slice() {
        [n] if *n as usize == rows => Ok(1),
        [n, k] if *n as usize == rows && *k >= 1 => Ok(*k as usize),
        _ => Err(InferError::Run(format!(
            "output `{name}` has shape {dims:?} for a batch of {rows} rows"
        ))),
    }
}

/// A sequence of `{class: probability}` maps (ZipMap), one per row, as a struct column with one
/// float32 field per class, in the order of the first row's map. Every row must name the same
/// classes in the same order, as ZipMap does.
fn map_sequence_column(
    value: &ort::value::DynValue,
    info: &OutputInfo,
    key: TensorElementType,
    rows: usize,
) -> Result<ArrayRef, InferError> {
    let maps = value
        .try_extract_sequence::<DynMapValueType>()
        .map_err(run_err)?;
    if maps.len() != rows {
        return Err(InferError::Run(format!(
            "output `{}` has {} maps for a batch of {rows} rows",
            info.name,
            maps.len()
        )));
    }
    let mut classes: Vec<String> = Vec::new();
    let mut columns: Vec<Vec<f32>> = Vec::new();
    for (row, map) in maps.iter().enumerate() {
        let entries: Vec<(String, f32)> = match key {
            TensorElementType::Int64 => map
                .try_extract_key_values::<i64, f32>()
                .map_err(run_err)?
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            _ => map
                .try_extract_key_values::<String, f32>()
                .map_err(run_err)?,
        };
        if row == 0 {
            classes = entries.iter().map(|(k, _)| k.clone()).collect();
            columns = vec![Vec::with_capacity(rows); classes.len()];
        }
        let same_classes = entries.len() == classes.len()
            && entries.iter().zip(&classes).all(|((k, _), c)| k == c);
        if !same_classes {
            return Err(InferError::Run(format!(
                "output `{}`: row {row} maps other classes than row 0",
                info.name
            )));
        }
        for ((_, v), column) in entries.into_iter().zip(&mut columns) {
            column.push(v);
        }
    }
    let fields: Fields = classes
        .iter()
        .map(|c| Field::new(c, DataType::Float32, false))
        .collect();
    let arrays: Vec<ArrayRef> = columns
        .into_iter()
        .map(|c| Arc::new(Float32Array::from(c)) as ArrayRef)
        .collect();
    if fields.is_empty() {
        return Ok(Arc::new(StructArray::new_empty_fields(rows, None)));
    }
    Ok(Arc::new(
        StructArray::try_new(fields, arrays, None).map_err(run_err)?,
    ))
}
