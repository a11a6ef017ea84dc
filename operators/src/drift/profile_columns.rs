//! How an Arrow column becomes profile columns: the one flattening the
//! profile builder and the drift monitor share, so they always agree.
//!
//! Guarantees: a `FixedSizeList<Float32|Float64>` of width K is the K numeric
//! columns `name[0]`..`name[K-1]`; a struct of Float32/Float64 fields (a
//! ZipMap output: one field per class) is the numeric columns `name[field]`
//! (its fields' nulls are missing); Float32/Float64/Int64/Int32 features and
//! Booleans (0/1) are numeric; Utf8 and integer model outputs (labels,
//! written in decimal) are categorical; nulls, null lists and NaN are
//! missing. Reading a value never allocates.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type};
use arrow_array::{
    Array, ArrayRef, BooleanArray, FixedSizeListArray, Float32Array, Float64Array, Int32Array,
    Int64Array, StringArray,
};
use arrow_schema::DataType;

use super::{ColumnKind, ColumnRole};
use crate::drift::error::DriftError;

/// A view of one flattened column of a batch; no values are copied.
#[derive(Debug)]
pub struct FlatColumn<'a> {
    /// Flattened name.
    pub name: String,
    /// Input or output.
    pub role: ColumnRole,
    /// The values.
    pub values: FlatValues<'a>,
}

/// The typed array behind a [`FlatColumn`].
#[derive(Debug, Clone, Copy)]
pub enum FlatValues<'a> {
    /// Numeric.
    Float32(&'a Float32Array),
    /// Numeric.
    Float64(&'a Float64Array),
    /// Numeric (a feature).
    Int64(&'a Int64Array),
    /// Numeric (a feature).
    Int32(&'a Int32Array),
    /// Numeric 0/1.
    Boolean(&'a BooleanArray),
    /// Element `k` of each fixed-size list of f32.
    ListFloat32(&'a FixedSizeListArray, &'a Float32Array, usize),
    /// Element `k` of each fixed-size list of f64.
    ListFloat64(&'a FixedSizeListArray, &'a Float64Array, usize),
    /// Categorical.
    Utf8(&'a StringArray),
    /// Categorical: an integer output label, in decimal.
    Label64(&'a Int64Array),
    /// Categorical: an integer output label, in decimal.
    Label32(&'a Int32Array),
}

impl FlatValues<'_> {
    /// Numeric or categorical.
    pub fn kind(&self) -> ColumnKind {
        match self {
            Self::Utf8(_) | Self::Label64(_) | Self::Label32(_) => ColumnKind::Categorical,
            _ => ColumnKind::Numeric,
        }
    }

    /// Value of `row` for numeric columns; `None` when null, NaN, or categorical.
    #[inline]
    pub fn number(&self, row: usize) -> Option<f64> {
        fn get<A: Array>(a: &A, row: usize, f: impl Fn(&A) -> f64) -> Option<f64> {
            a.is_valid(row).then(|| f(a)).filter(|x| !x.is_nan())
        }
        match *self {
            Self::Float32(a) => get(a, row, |a| f64::from(a.value(row))),
            Self::Float64(a) => get(a, row, |a| a.value(row)),
            Self::Int64(a) => get(a, row, |a| a.value(row) as f64),
            Self::Int32(a) => get(a, row, |a| f64::from(a.value(row))),
            Self::Boolean(a) => get(a, row, |a| f64::from(u8::from(a.value(row)))),
            Self::ListFloat32(list, child, k) => {
                let i = list.value_offset_at(row) + k;
                if list.is_null(row) {
                    return None;
                }
                get(child, i, |c| f64::from(c.value(i)))
            }
            Self::ListFloat64(list, child, k) => {
                let i = list.value_offset_at(row) + k;
                if list.is_null(row) {
                    return None;
                }
                get(child, i, |c| c.value(i))
            }
            Self::Utf8(_) | Self::Label64(_) | Self::Label32(_) => None,
        }
    }

    /// Category of `row` for categorical columns; labels are written into
    /// `buf` so that no row allocates. `None` when null or numeric.
    #[inline]
    pub fn category<'s>(&'s self, row: usize, buf: &'s mut itoa::Buffer) -> Option<&'s str> {
        match *self {
            Self::Utf8(a) => a.is_valid(row).then(|| a.value(row)),
            Self::Label64(a) => a.is_valid(row).then(|| buf.format(a.value(row))),
            Self::Label32(a) => a.is_valid(row).then(|| buf.format(a.value(row))),
            _ => None,
        }
    }
}

/// Flattens `(name, role, array)` columns into profile columns (see the
/// module docs); every array must have the same length.
pub fn flatten_columns<'a>(
    columns: &[(&str, ColumnRole, &'a ArrayRef)],
) -> Result<(usize, Vec<FlatColumn<'a>>), DriftError> {
    let rows = columns.first().map_or(0, |(_, _, a)| a.len());
    let mut out = Vec::with_capacity(columns.len());
    for &(name, role, array) in columns {
        if array.len() != rows {
            return Err(bad_column(
                name,
                &format!("has {} rows, expected {rows}", array.len()),
            ));
        }
        let one = |values| FlatColumn {
            name: name.to_string(),
            role,
            values,
        };
        let is_output = role == ColumnRole::Output;
        match array.data_type() {
            DataType::Float32 => out.push(one(FlatValues::Float32(array.as_primitive()))),
            DataType::Float64 => out.push(one(FlatValues::Float64(array.as_primitive()))),
            DataType::Boolean => out.push(one(FlatValues::Boolean(array.as_boolean()))),
            DataType::Utf8 => out.push(one(FlatValues::Utf8(array.as_string()))),
            DataType::Int64 if is_output => {
                out.push(one(FlatValues::Label64(array.as_primitive())))
            }
            DataType::Int32 if is_output => {
                out.push(one(FlatValues::Label32(array.as_primitive())))
            }
            DataType::Int64 => out.push(one(FlatValues::Int64(array.as_primitive()))),
            DataType::Int32 => out.push(one(FlatValues::Int32(array.as_primitive()))),
            DataType::FixedSizeList(_, width) => {
                let list = array.as_fixed_size_list();
                let child = list.values();
                let width = usize::try_from(*width).unwrap_or(0);
                for k in 0..width {
                    let values = match child.data_type() {
                        DataType::Float32 => {
                            FlatValues::ListFloat32(list, child.as_primitive::<Float32Type>(), k)
                        }
                        DataType::Float64 => {
                            FlatValues::ListFloat64(list, child.as_primitive::<Float64Type>(), k)
                        }
                        other => {
                            return Err(bad_column(name, &format!("unsupported list of {other}")))
                        }
                    };
                    out.push(FlatColumn {
                        name: format!("{name}[{k}]"),
                        role,
                        values,
                    });
                }
            }
            DataType::Struct(fields) => {
                for (field, child) in fields.iter().zip(array.as_struct().columns()) {
                    let values = match child.data_type() {
                        DataType::Float32 => FlatValues::Float32(child.as_primitive()),
                        DataType::Float64 => FlatValues::Float64(child.as_primitive()),
                        other => {
                            return Err(bad_column(
                                name,
                                &format!("unsupported struct field of {other}"),
                            ))
                        }
                    };
                    out.push(FlatColumn {
                        name: format!("{name}[{}]", field.name()),
                        role,
                        values,
                    });
                }
            }
            other => return Err(bad_column(name, &format!("unsupported Arrow type {other}"))),
        }
    }
    Ok((rows, out))
}

pub(super) fn bad_column(name: &str, why: &str) -> DriftError {
    DriftError::InvalidParameter {
        name: "column",
        reason: format!("`{name}` {why}"),
    }
}
