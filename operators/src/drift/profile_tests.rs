use std::sync::Arc;

use arrow_array::builder::{FixedSizeListBuilder, Float32Builder};
use arrow_array::{BooleanArray, Float64Array, Int64Array, StringArray};

use super::*;

fn f64s(values: &[Option<f64>]) -> ArrayRef {
    Arc::new(Float64Array::from(values.to_vec()))
}

fn strings(values: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(values.to_vec()))
}

/// A FixedSizeList<Float32, 2>; `None` rows are null lists.
fn pairs(rows: &[Option<[f32; 2]>]) -> ArrayRef {
    let mut b = FixedSizeListBuilder::new(Float32Builder::new(), 2);
    for row in rows {
        match row {
            Some([a, c]) => {
                b.values().append_value(*a);
                b.values().append_value(*c);
                b.append(true);
            }
            None => {
                b.values().append_null();
                b.values().append_null();
                b.append(false);
            }
        }
    }
    Arc::new(b.finish())
}

fn small_profile() -> ReferenceProfile {
    let x = f64s(&[
        Some(1.0),
        None,
        Some(f64::NAN),
        Some(3.0),
        Some(2.0),
        Some(5.0),
    ]);
    let city = strings(&[Some("b"), Some("a"), None, Some("b"), Some("c"), Some("b")]);
    let on: ArrayRef = Arc::new(BooleanArray::from(vec![
        true, false, true, true, false, true,
    ]));
    let mut b = ProfileBuilder::new(100, 4, 7);
    b.add(&[
        ("x", ColumnRole::Feature, &x),
        ("city", ColumnRole::Feature, &city),
        ("on", ColumnRole::Feature, &on),
    ])
    .unwrap();
    assert_eq!(b.events(), 6);
    b.finish().unwrap()
}

#[test]
fn numeric_and_categorical_columns_are_profiled() {
    let p = small_profile();
    assert_eq!(
        (p.version, p.n_events, p.columns.len()),
        (PROFILE_VERSION, 6, 3)
    );
    let x = p.column("x").unwrap();
    assert_eq!(x.missing, 2, "null and NaN are missing");
    let sorted = [1.0, 2.0, 3.0, 5.0];
    let binning = QuantileBinning::from_sorted_reference(&sorted, 4).unwrap();
    let want = ColumnStats::Numeric {
        cuts: binning.cuts().to_vec(),
        counts: binning.counts(&sorted),
        sample: sorted.to_vec(),
    };
    assert_eq!(x.stats, want);
    let city = p.column("city").unwrap();
    assert_eq!(city.missing, 1);
    let want = ColumnStats::Categorical {
        categories: vec!["a".into(), "b".into(), "c".into()],
        counts: vec![1, 3, 1],
    };
    assert_eq!(city.stats, want);
    let on = p.column("on").unwrap();
    assert_eq!(on.stats.kind(), ColumnKind::Numeric);
    assert_eq!(on.stats.counts().iter().sum::<u64>(), 6);
    assert!(p.id.starts_with("ref-") && p.id.len() == 20, "{}", p.id);
    assert_eq!(
        small_profile().id,
        p.id,
        "the id depends on the content only"
    );
}

#[test]
fn json_round_trips_and_is_checked() {
    let p = small_profile();
    let text = p.to_json();
    assert_eq!(ReferenceProfile::from_json(&text).unwrap(), p);
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["columns"][0]["role"], "feature");
    assert_eq!(json["columns"][0]["stats"]["kind"], "numeric");
    assert_eq!(json["columns"][1]["stats"]["kind"], "categorical");

    let broken = |edit: &dyn Fn(&mut ReferenceProfile)| {
        let mut q = p.clone();
        edit(&mut q);
        ReferenceProfile::from_json(&q.to_json()).unwrap_err()
    };
    let err = broken(&|q| q.version = PROFILE_VERSION + 1);
    assert!(err.to_string().contains("version 2"), "{err}");
    broken(&|q| {
        if let ColumnStats::Numeric { cuts, .. } = &mut q.columns[0].stats {
            cuts.reverse();
        }
    });
    broken(&|q| {
        if let ColumnStats::Numeric { counts, .. } = &mut q.columns[0].stats {
            counts.pop();
        }
    });
    broken(&|q| {
        if let ColumnStats::Categorical { categories, .. } = &mut q.columns[1].stats {
            categories.swap(0, 1);
        }
    });
    broken(&|q| {
        if let ColumnStats::Categorical { counts, .. } = &mut q.columns[1].stats {
            counts.push(1);
        }
    });
    broken(&|q| q.columns[1].name = "x".into());
    assert!(ReferenceProfile::from_json("{").is_err());
}

#[test]
fn fixed_size_lists_and_integer_labels_are_flattened() {
    let probs = pairs(&[Some([0.9, 0.1]), None, Some([0.2, 0.8]), Some([0.6, 0.4])]);
    let label: ArrayRef = Arc::new(Int64Array::from(vec![Some(0), Some(1), None, Some(10)]));
    let count: ArrayRef = Arc::new(Int64Array::from(vec![3, 4, 5, 6]));
    let mut b = ProfileBuilder::new(10, 2, 1);
    b.add(&[
        ("probabilities", ColumnRole::Output, &probs),
        ("label", ColumnRole::Output, &label),
        ("count", ColumnRole::Feature, &count),
    ])
    .unwrap();
    let p = b.finish().unwrap();
    let names: Vec<&str> = p.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["probabilities[0]", "probabilities[1]", "label", "count"]
    );
    let second = p.column("probabilities[1]").unwrap();
    assert_eq!((second.role, second.missing), (ColumnRole::Output, 1));
    let ColumnStats::Numeric { sample, .. } = &second.stats else {
        panic!("numeric expected");
    };
    let want: Vec<f64> = [0.1f32, 0.4, 0.8].iter().map(|&v| f64::from(v)).collect();
    assert_eq!(sample, &want, "element 1 of each non-null list");
    let label = p.column("label").unwrap();
    let want = ColumnStats::Categorical {
        categories: vec!["0".into(), "1".into(), "10".into()],
        counts: vec![1, 1, 1],
    };
    assert_eq!((&label.stats, label.missing), (&want, 1));
    assert_eq!(p.column("count").unwrap().stats.kind(), ColumnKind::Numeric);
}

#[test]
fn reservoir_is_bounded_seeded_and_counts_use_every_value() {
    let values: Vec<f64> = (0..1000).map(|i| f64::from(i * 7 % 1000)).collect();
    let array: ArrayRef = Arc::new(Float64Array::from(values.clone()));
    let build = |seed| {
        let mut b = ProfileBuilder::new(50, 10, seed);
        b.add(&[("v", ColumnRole::Feature, &array)]).unwrap();
        b.finish().unwrap()
    };
    let (a, b, c) = (build(1), build(1), build(2));
    assert_eq!(a, b);
    let (
        ColumnStats::Numeric {
            cuts,
            counts,
            sample,
        },
        ColumnStats::Numeric { sample: other, .. },
    ) = (&a.columns[0].stats, &c.columns[0].stats)
    else {
        panic!("numeric expected");
    };
    assert_eq!(sample.len(), 50);
    assert!(
        sample.windows(2).all(|w| w[0] < w[1]),
        "sorted, no value twice"
    );
    assert!(sample.iter().all(|x| values.contains(x)));
    assert_ne!(sample, other, "another seed, another sample");
    let offline = QuantileBinning::from_reference(&values, 10).unwrap();
    assert_eq!(
        (cuts.as_slice(), counts),
        (offline.cuts(), &offline.counts(&values))
    );
}

#[test]
fn bad_batches_are_rejected() {
    let x = f64s(&[Some(1.0), Some(2.0)]);
    let short = f64s(&[Some(1.0)]);
    let words = strings(&[Some("a"), Some("b")]);
    let nulls = f64s(&[None, None]);
    let mut b = ProfileBuilder::new(10, 2, 0);
    assert!(b
        .add(&[
            ("x", ColumnRole::Feature, &x),
            ("y", ColumnRole::Feature, &short)
        ])
        .is_err());
    b.add(&[("x", ColumnRole::Feature, &x)]).unwrap();
    assert!(
        b.add(&[("x", ColumnRole::Feature, &words)]).is_err(),
        "kind changed"
    );
    let date: ArrayRef = Arc::new(arrow_array::Date32Array::from(vec![1, 2]));
    assert!(b.add(&[("d", ColumnRole::Feature, &date)]).is_err());
    assert_eq!(b.events(), 2, "rejected batches add nothing");
    b.add(&[("n", ColumnRole::Feature, &nulls)]).unwrap();
    assert!(
        b.finish().is_err(),
        "a column with no values cannot be binned"
    );
    assert!(ProfileBuilder::new(10, 10, 0).finish().is_err());
    let mut b = ProfileBuilder::new(10, 2, 0);
    b.add(&[("x", ColumnRole::Feature, &x)]).unwrap();
    b.add(&[("z", ColumnRole::Feature, &x)]).unwrap();
    let p = b.finish().unwrap();
    assert_eq!(
        (
            p.column("x").unwrap().missing,
            p.column("z").unwrap().missing
        ),
        (2, 2)
    );
}
