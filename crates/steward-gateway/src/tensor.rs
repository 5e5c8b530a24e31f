//! Open Inference Protocol tensors: datatypes, shapes, and the JSON form of tensor data
//! (nested or flat, row-major), checked against `prod(shape)` and the element limit.

use serde_json::Value;

/// OIP datatypes (BF16 as Triton adds it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datatype {
    Bool,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Int8,
    Int16,
    Int32,
    Int64,
    Fp16,
    Bf16,
    Fp32,
    Fp64,
    Bytes,
}

impl Datatype {
    pub const ALL: &'static [Datatype] = &[
        Datatype::Bool,
        Datatype::Uint8,
        Datatype::Uint16,
        Datatype::Uint32,
        Datatype::Uint64,
        Datatype::Int8,
        Datatype::Int16,
        Datatype::Int32,
        Datatype::Int64,
        Datatype::Fp16,
        Datatype::Bf16,
        Datatype::Fp32,
        Datatype::Fp64,
        Datatype::Bytes,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Datatype::Bool => "BOOL",
            Datatype::Uint8 => "UINT8",
            Datatype::Uint16 => "UINT16",
            Datatype::Uint32 => "UINT32",
            Datatype::Uint64 => "UINT64",
            Datatype::Int8 => "INT8",
            Datatype::Int16 => "INT16",
            Datatype::Int32 => "INT32",
            Datatype::Int64 => "INT64",
            Datatype::Fp16 => "FP16",
            Datatype::Bf16 => "BF16",
            Datatype::Fp32 => "FP32",
            Datatype::Fp64 => "FP64",
            Datatype::Bytes => "BYTES",
        }
    }

    pub fn parse(text: &str) -> Option<Datatype> {
        Datatype::ALL
            .iter()
            .copied()
            .find(|datatype| datatype.as_str() == text)
    }
}

/// Tensor elements, by kind. Integers of every width are kept as i64/u64 until the model's
/// input type is known; FP16/BF16 travel as f32 in JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum Elements {
    Bool(Vec<bool>),
    Int(Vec<i64>),
    Uint(Vec<u64>),
    Float(Vec<f64>),
    Bytes(Vec<Vec<u8>>),
}

impl Elements {
    pub fn len(&self) -> usize {
        match self {
            Elements::Bool(values) => values.len(),
            Elements::Int(values) => values.len(),
            Elements::Uint(values) => values.len(),
            Elements::Float(values) => values.len(),
            Elements::Bytes(values) => values.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A tensor as a request carries it or a response returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub datatype: Datatype,
    pub shape: Vec<u64>,
    pub elements: Elements,
}

/// `prod(shape)`, or `None` when it overflows or exceeds `limit`.
pub fn element_count(shape: &[u64], limit: u64) -> Option<u64> {
    // Every dimension is bounded too: `[0, 2^62]` holds no element but could still make a
    // graph that reads its input's shape allocate without bound.
    if shape.iter().any(|&dim| dim > limit) {
        return None;
    }
    shape
        .iter()
        .try_fold(1u64, |acc, &dim| acc.checked_mul(dim))
        .filter(|&count| count <= limit)
}

/// Flattens JSON tensor data (nested arrays or flat) in row-major order.
fn flatten<'a>(value: &'a Value, out: &mut Vec<&'a Value>, limit: usize) -> Result<(), String> {
    match value {
        Value::Array(items) => {
            for item in items {
                flatten(item, out, limit)?;
                if out.len() > limit {
                    return Err(format!("more than {limit} elements"));
                }
            }
            Ok(())
        }
        other => {
            out.push(other);
            Ok(())
        }
    }
}

/// Decodes the `data` of a JSON input with the given datatype and shape; every problem
/// names the input.
pub fn from_json(
    name: &str,
    datatype: Datatype,
    shape: &[u64],
    data: &Value,
    limit: u64,
) -> Result<Tensor, String> {
    let count = element_count(shape, limit).ok_or_else(|| {
        format!("input `{name}`: shape {shape:?} holds more than {limit} elements (the limit)")
    })?;
    let mut flat = Vec::new();
    flatten(data, &mut flat, limit as usize)
        .map_err(|err| format!("input `{name}`: data has {err}"))?;
    if flat.len() as u64 != count {
        return Err(format!(
            "input `{name}`: shape {shape:?} needs {count} elements, data has {}",
            flat.len()
        ));
    }
    let bad = |index: usize, what: &str| format!("input `{name}`: element {index} is not {what}");
    let elements = match datatype {
        Datatype::Bool => Elements::Bool(
            flat.iter()
                .enumerate()
                .map(|(i, v)| v.as_bool().ok_or_else(|| bad(i, "a boolean")))
                .collect::<Result<_, _>>()?,
        ),
        Datatype::Int8 | Datatype::Int16 | Datatype::Int32 | Datatype::Int64 => {
            let (low, high) = int_range(datatype);
            Elements::Int(
                flat.iter()
                    .enumerate()
                    .map(|(i, v)| {
                        v.as_i64()
                            .filter(|x| (low..=high).contains(x))
                            .ok_or_else(|| bad(i, &format!("an integer for {}", datatype.as_str())))
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
        Datatype::Uint8 | Datatype::Uint16 | Datatype::Uint32 | Datatype::Uint64 => {
            let high = uint_max(datatype);
            Elements::Uint(
                flat.iter()
                    .enumerate()
                    .map(|(i, v)| {
                        v.as_u64()
                            .filter(|x| *x <= high)
                            .ok_or_else(|| bad(i, &format!("an integer for {}", datatype.as_str())))
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
        Datatype::Fp16 | Datatype::Bf16 | Datatype::Fp32 | Datatype::Fp64 => Elements::Float(
            flat.iter()
                .enumerate()
                .map(|(i, v)| v.as_f64().ok_or_else(|| bad(i, "a number")))
                .collect::<Result<_, _>>()?,
        ),
        Datatype::Bytes => Elements::Bytes(
            flat.iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_str()
                        .map(|text| text.as_bytes().to_vec())
                        .ok_or_else(|| bad(i, "a string"))
                })
                .collect::<Result<_, _>>()?,
        ),
    };
    Ok(Tensor {
        name: name.to_owned(),
        datatype,
        shape: shape.to_vec(),
        elements,
    })
}

fn int_range(datatype: Datatype) -> (i64, i64) {
    match datatype {
        Datatype::Int8 => (i8::MIN.into(), i8::MAX.into()),
        Datatype::Int16 => (i16::MIN.into(), i16::MAX.into()),
        Datatype::Int32 => (i32::MIN.into(), i32::MAX.into()),
        _ => (i64::MIN, i64::MAX),
    }
}

fn uint_max(datatype: Datatype) -> u64 {
    match datatype {
        Datatype::Uint8 => u8::MAX.into(),
        Datatype::Uint16 => u16::MAX.into(),
        Datatype::Uint32 => u32::MAX.into(),
        _ => u64::MAX,
    }
}

/// The JSON `data` of an output: flat, row-major.
pub fn to_json(elements: &Elements) -> Value {
    match elements {
        Elements::Bool(values) => Value::from(values.clone()),
        Elements::Int(values) => Value::from(values.clone()),
        Elements::Uint(values) => Value::from(values.clone()),
        Elements::Float(values) => Value::Array(
            values
                .iter()
                .map(|&x| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number))
                .collect(),
        ),
        Elements::Bytes(values) => Value::Array(
            values
                .iter()
                .map(|bytes| Value::String(String::from_utf8_lossy(bytes).into_owned()))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_and_flat_data_decode_alike_and_counts_are_checked() {
        let nested = from_json(
            "x",
            Datatype::Fp32,
            &[2, 2],
            &json!([[1, 2], [3.5, 4]]),
            100,
        )
        .unwrap();
        let flat = from_json("x", Datatype::Fp32, &[2, 2], &json!([1, 2, 3.5, 4]), 100).unwrap();
        assert_eq!(nested, flat);
        assert_eq!(nested.elements, Elements::Float(vec![1.0, 2.0, 3.5, 4.0]));
        let short = from_json("x", Datatype::Fp32, &[2, 3], &json!([1, 2]), 100).unwrap_err();
        assert_eq!(
            short,
            "input `x`: shape [2, 3] needs 6 elements, data has 2"
        );
        let huge =
            from_json("x", Datatype::Fp32, &[1 << 40, 1 << 40], &json!([]), 100).unwrap_err();
        assert!(huge.contains("more than 100 elements"), "{huge}");
        let wide = from_json("x", Datatype::Fp32, &[0, 1 << 62], &json!([]), 100).unwrap_err();
        assert!(wide.contains("more than 100 elements"), "{wide}");
        let typed = from_json("x", Datatype::Int8, &[1], &json!([300]), 100).unwrap_err();
        assert_eq!(typed, "input `x`: element 0 is not an integer for INT8");
        let bytes = from_json("s", Datatype::Bytes, &[2], &json!(["a", "bé"]), 100).unwrap();
        assert_eq!(
            bytes.elements,
            Elements::Bytes(vec![b"a".to_vec(), "bé".as_bytes().to_vec()])
        );
        assert!(from_json("b", Datatype::Bool, &[1], &json!([1]), 100).is_err());
    }

    #[test]
    fn datatypes_round_trip_their_names() {
        for datatype in Datatype::ALL {
            assert_eq!(Datatype::parse(datatype.as_str()), Some(*datatype));
        }
        assert_eq!(Datatype::parse("FLOAT"), None);
    }
}
