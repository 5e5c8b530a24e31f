//! The binary tensor data extension (Triton's, the `tritonclient` default): tensor data as
//! little-endian, row-major bytes after the JSON header, in the order of the tensors; BYTES
//! elements each with a 4-byte little-endian length prefix; FP16 and BF16 as their bits.

use crate::tensor::{Datatype, Elements, Tensor, element_count};

/// Bytes per element (`None` for BYTES, which is variable).
pub fn element_size(datatype: Datatype) -> Option<usize> {
    Some(match datatype {
        Datatype::Bool | Datatype::Uint8 | Datatype::Int8 => 1,
        Datatype::Uint16 | Datatype::Int16 | Datatype::Fp16 | Datatype::Bf16 => 2,
        Datatype::Uint32 | Datatype::Int32 | Datatype::Fp32 => 4,
        Datatype::Uint64 | Datatype::Int64 | Datatype::Fp64 => 8,
        Datatype::Bytes => return None,
    })
}

/// IEEE 754 half precision to f32 (exact).
pub fn f16_to_f32(bits: u16) -> f32 {
    let sign = u32::from(bits >> 15) << 31;
    let exponent = u32::from((bits >> 10) & 0x1f);
    let fraction = u32::from(bits & 0x3ff);
    let value = match (exponent, fraction) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: normalise.
            let mut e = 127 - 15 + 1;
            let mut f = fraction;
            while f & 0x400 == 0 {
                f <<= 1;
                e -= 1;
            }
            sign | (e << 23) | ((f & 0x3ff) << 13)
        }
        (0x1f, _) => sign | 0x7f80_0000 | (fraction << 13),
        _ => sign | ((exponent + 127 - 15) << 23) | (fraction << 13),
    };
    f32::from_bits(value)
}

/// f32 to IEEE 754 half precision, rounding to nearest even.
pub fn f32_to_f16(value: f32) -> u16 {
    let bits = value.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exponent = ((bits >> 23) & 0xff) as i32;
    let fraction = bits & 0x7f_ffff;
    if exponent == 0xff {
        return sign | 0x7c00 | if fraction != 0 { 0x200 } else { 0 };
    }
    let half_exponent = exponent - 127 + 15;
    if half_exponent >= 0x1f {
        return sign | 0x7c00;
    }
    if half_exponent <= 0 {
        if half_exponent < -10 {
            return sign;
        }
        let mantissa = fraction | 0x80_0000;
        let shift = (14 - half_exponent) as u32;
        let half = (mantissa >> shift) as u16;
        let rest = mantissa & ((1 << shift) - 1);
        let halfway = 1 << (shift - 1);
        let round = rest > halfway || (rest == halfway && half & 1 == 1);
        return sign | (half + u16::from(round));
    }
    let half = sign | ((half_exponent as u16) << 10) | ((fraction >> 13) as u16);
    let rest = fraction & 0x1fff;
    let round = rest > 0x1000 || (rest == 0x1000 && half & 1 == 1);
    half + u16::from(round)
}

/// Decodes one input's binary data; every problem names the input.
pub fn decode(
    name: &str,
    datatype: Datatype,
    shape: &[u64],
    bytes: &[u8],
    limit: u64,
) -> Result<Tensor, String> {
    let count = element_count(shape, limit).ok_or_else(|| {
        format!("input `{name}`: shape {shape:?} holds more than {limit} elements (the limit)")
    })? as usize;
    let elements = match element_size(datatype) {
        Some(size) => {
            if bytes.len() != count * size {
                return Err(format!(
                    "input `{name}`: shape {shape:?} of {} needs {} bytes, binary_data_size says {}",
                    datatype.as_str(),
                    count * size,
                    bytes.len()
                ));
            }
            let chunks = bytes.chunks_exact(size);
            macro_rules! le {
                ($t:ty) => {
                    chunks.map(|c| <$t>::from_le_bytes(c.try_into().unwrap_or_default()))
                };
            }
            match datatype {
                Datatype::Bool => Elements::Bool(bytes.iter().map(|&b| b != 0).collect()),
                Datatype::Int8 => Elements::Int(le!(i8).map(i64::from).collect()),
                Datatype::Int16 => Elements::Int(le!(i16).map(i64::from).collect()),
                Datatype::Int32 => Elements::Int(le!(i32).map(i64::from).collect()),
                Datatype::Int64 => Elements::Int(le!(i64).collect()),
                Datatype::Uint8 => Elements::Uint(bytes.iter().map(|&b| u64::from(b)).collect()),
                Datatype::Uint16 => Elements::Uint(le!(u16).map(u64::from).collect()),
                Datatype::Uint32 => Elements::Uint(le!(u32).map(u64::from).collect()),
                Datatype::Uint64 => Elements::Uint(le!(u64).collect()),
                Datatype::Fp16 => {
                    Elements::Float(le!(u16).map(|h| f64::from(f16_to_f32(h))).collect())
                }
                Datatype::Bf16 => Elements::Float(
                    le!(u16)
                        .map(|h| f64::from(f32::from_bits(u32::from(h) << 16)))
                        .collect(),
                ),
                Datatype::Fp32 => Elements::Float(le!(f32).map(f64::from).collect()),
                Datatype::Fp64 => Elements::Float(le!(f64).collect()),
                Datatype::Bytes => unreachable!("BYTES has no fixed size"),
            }
        }
        None => {
            let mut values = Vec::with_capacity(count.min(1 << 16));
            let mut rest = bytes;
            while !rest.is_empty() {
                let Some((length, tail)) = rest.split_first_chunk::<4>() else {
                    return Err(format!(
                        "input `{name}`: a BYTES element's length prefix is cut off"
                    ));
                };
                let length = u32::from_le_bytes(*length) as usize;
                if tail.len() < length {
                    return Err(format!(
                        "input `{name}`: a BYTES element says {length} bytes, {} remain",
                        tail.len()
                    ));
                }
                values.push(tail[..length].to_vec());
                rest = &tail[length..];
            }
            if values.len() != count {
                return Err(format!(
                    "input `{name}`: shape {shape:?} needs {count} elements, the binary data has {}",
                    values.len()
                ));
            }
            Elements::Bytes(values)
        }
    };
    Ok(Tensor {
        name: name.to_owned(),
        datatype,
        shape: shape.to_vec(),
        elements,
    })
}

/// The binary form of an output tensor.
pub fn encode(tensor: &Tensor) -> Vec<u8> {
    let mut out = Vec::new();
    match (&tensor.elements, tensor.datatype) {
        (Elements::Bool(values), _) => out.extend(values.iter().map(|&b| u8::from(b))),
        (Elements::Float(values), Datatype::Fp64) => {
            values.iter().for_each(|x| out.extend(x.to_le_bytes()))
        }
        (Elements::Float(values), Datatype::Fp16) => values
            .iter()
            .for_each(|&x| out.extend(f32_to_f16(x as f32).to_le_bytes())),
        (Elements::Float(values), Datatype::Bf16) => values
            .iter()
            .for_each(|&x| out.extend((((x as f32).to_bits() >> 16) as u16).to_le_bytes())),
        (Elements::Float(values), _) => values
            .iter()
            .for_each(|&x| out.extend((x as f32).to_le_bytes())),
        (Elements::Int(values), datatype) => values.iter().for_each(|&x| match datatype {
            Datatype::Int8 => out.extend((x as i8).to_le_bytes()),
            Datatype::Int16 => out.extend((x as i16).to_le_bytes()),
            Datatype::Int32 => out.extend((x as i32).to_le_bytes()),
            _ => out.extend(x.to_le_bytes()),
        }),
        (Elements::Uint(values), datatype) => values.iter().for_each(|&x| match datatype {
            Datatype::Uint8 => out.push(x as u8),
            Datatype::Uint16 => out.extend((x as u16).to_le_bytes()),
            Datatype::Uint32 => out.extend((x as u32).to_le_bytes()),
            _ => out.extend(x.to_le_bytes()),
        }),
        (Elements::Bytes(values), _) => values.iter().for_each(|value| {
            out.extend((value.len() as u32).to_le_bytes());
            out.extend(value);
        }),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_datatype_round_trips() {
        let cases = [
            (Datatype::Fp32, Elements::Float(vec![1.5, -2.25, 0.0])),
            (Datatype::Fp64, Elements::Float(vec![1e-300, -2.5, 3.0])),
            (
                Datatype::Fp16,
                Elements::Float(vec![1.5, -65504.0, 0.000_061_035_156_25]),
            ),
            (Datatype::Bf16, Elements::Float(vec![1.0, -2.0, 256.0])),
            (Datatype::Int8, Elements::Int(vec![-128, 0, 127])),
            (Datatype::Int32, Elements::Int(vec![-5, 1 << 30, 7])),
            (Datatype::Int64, Elements::Int(vec![i64::MIN, 0, i64::MAX])),
            (Datatype::Uint16, Elements::Uint(vec![0, 65535, 7])),
            (Datatype::Uint64, Elements::Uint(vec![u64::MAX, 0, 1])),
            (Datatype::Bool, Elements::Bool(vec![true, false, true])),
            (
                Datatype::Bytes,
                Elements::Bytes(vec![b"a".to_vec(), Vec::new(), "é".as_bytes().to_vec()]),
            ),
        ];
        for (datatype, elements) in cases {
            let tensor = Tensor {
                name: "x".into(),
                datatype,
                shape: vec![3],
                elements,
            };
            let bytes = encode(&tensor);
            assert_eq!(
                decode("x", datatype, &[3], &bytes, 100).unwrap(),
                tensor,
                "{datatype:?}"
            );
        }
    }

    #[test]
    fn wrong_sizes_and_cut_prefixes_are_refused() {
        let err = decode("x", Datatype::Fp32, &[2], &[0; 7], 100).unwrap_err();
        assert_eq!(
            err,
            "input `x`: shape [2] of FP32 needs 8 bytes, binary_data_size says 7"
        );
        let err = decode("s", Datatype::Bytes, &[1], &[5, 0, 0, 0, b'a'], 100).unwrap_err();
        assert!(err.contains("says 5 bytes, 1 remain"), "{err}");
        let err = decode("s", Datatype::Bytes, &[2], &[1, 0, 0, 0, b'a'], 100).unwrap_err();
        assert!(
            err.contains("needs 2 elements, the binary data has 1"),
            "{err}"
        );
        assert!(
            decode("s", Datatype::Bytes, &[1], &[1, 0], 100)
                .unwrap_err()
                .contains("cut off")
        );
    }

    #[test]
    fn half_precision_matches_ieee_754() {
        assert_eq!(f32_to_f16(1.0), 0x3c00);
        assert_eq!(f32_to_f16(-2.0), 0xc000);
        assert_eq!(f32_to_f16(65504.0), 0x7bff);
        assert_eq!(f32_to_f16(1e9), 0x7c00);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f32_to_f16(2f32.powi(-24)), 0x0001);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f32_to_f16(1.0 + 2f32.powi(-11)), 0x3c00, "ties go to even");
    }
}
