//! ONNX models run in-process with tract: loading from bytes (already verified and
//! decrypted by the caller), the metadata the graph declares, and one inference.

use tract_onnx::prelude::*;

use crate::tensor::{Datatype, Elements, Tensor as OipTensor};

type Plan = std::sync::Arc<TypedRunnableModel>;

/// A tensor the model declares: name, datatype, shape (`-1` for a dimension that varies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    pub datatype: Datatype,
    pub shape: Vec<i64>,
}

/// A loaded, optimised ONNX model, ready to run from any thread.
pub struct OnnxModel {
    plan: Plan,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
}

fn datatype_of(datum: DatumType) -> Option<Datatype> {
    Some(match datum {
        DatumType::Bool => Datatype::Bool,
        DatumType::U8 => Datatype::Uint8,
        DatumType::U16 => Datatype::Uint16,
        DatumType::U32 => Datatype::Uint32,
        DatumType::U64 => Datatype::Uint64,
        DatumType::I8 => Datatype::Int8,
        DatumType::I16 => Datatype::Int16,
        DatumType::I32 => Datatype::Int32,
        DatumType::I64 => Datatype::Int64,
        DatumType::F16 => Datatype::Fp16,
        DatumType::F32 => Datatype::Fp32,
        DatumType::F64 => Datatype::Fp64,
        DatumType::String => Datatype::Bytes,
        _ => return None,
    })
}

fn spec(name: String, fact: &TypedFact) -> Result<TensorSpec, String> {
    let datatype = datatype_of(fact.datum_type).ok_or_else(|| {
        format!(
            "tensor `{name}` has type {:?}, which OIP cannot carry",
            fact.datum_type
        )
    })?;
    let shape = fact
        .shape
        .iter()
        .map(|dim| dim.to_i64().unwrap_or(-1))
        .collect();
    Ok(TensorSpec {
        name,
        datatype,
        shape,
    })
}

fn err(context: &str) -> impl Fn(TractError) -> String + '_ {
    move |error| format!("{context}: {}", error.root_cause())
}

impl OnnxModel {
    /// Parses, types and optimises an ONNX model. Errors name what tract could not handle.
    pub fn load(bytes: &[u8]) -> Result<OnnxModel, String> {
        let mut reader = bytes;
        let model = tract_onnx::onnx()
            .model_for_read(&mut reader)
            .map_err(err("the ONNX model does not load"))?;
        let typed = model
            .into_typed()
            .map_err(err("the ONNX model's types cannot be inferred"))?;
        let mut inputs = Vec::new();
        for outlet in typed.input_outlets().map_err(err("inputs"))? {
            let name = typed.node(outlet.node).name.clone();
            let fact = typed.outlet_fact(*outlet).map_err(err("inputs"))?;
            inputs.push(spec(name, fact)?);
        }
        let mut outputs = Vec::new();
        for outlet in typed.output_outlets().map_err(err("outputs"))? {
            let name = typed
                .outlet_label(*outlet)
                .map(str::to_owned)
                .unwrap_or_else(|| typed.node(outlet.node).name.clone());
            let fact = typed.outlet_fact(*outlet).map_err(err("outputs"))?;
            outputs.push(spec(name, fact)?);
        }
        // Refuse what `run` cannot feed or read, so a model is never ready and then failing.
        for spec in inputs.iter().chain(&outputs) {
            if matches!(
                spec.datatype,
                Datatype::Fp16 | Datatype::Bf16 | Datatype::Bytes
            ) {
                return Err(format!(
                    "tensor `{}` is {}, which this runtime does not serve yet",
                    spec.name,
                    spec.datatype.as_str()
                ));
            }
        }
        let plan = typed
            .into_optimized()
            .map_err(err("the ONNX model does not optimise"))?
            .into_runnable()
            .map_err(err("the ONNX model cannot run"))?;
        Ok(OnnxModel {
            plan,
            inputs,
            outputs,
        })
    }

    /// Runs the model on `inputs` (one per declared input, in any order, by name). Errors are
    /// the caller's (400): a missing, unknown or mistyped input, a shape the model refuses.
    pub fn run(&self, inputs: &[OipTensor]) -> Result<Vec<OipTensor>, String> {
        let mut values: TVec<TValue> = TVec::new();
        for spec in &self.inputs {
            let input = inputs
                .iter()
                .find(|input| input.name == spec.name)
                .ok_or_else(|| format!("input `{}` is missing", spec.name))?;
            if input.datatype != spec.datatype {
                return Err(format!(
                    "input `{}` is {} in the model, not {}",
                    spec.name,
                    spec.datatype.as_str(),
                    input.datatype.as_str()
                ));
            }
            if input.shape.len() != spec.shape.len()
                || input
                    .shape
                    .iter()
                    .zip(&spec.shape)
                    .any(|(&got, &want)| want >= 0 && got != want as u64)
            {
                return Err(format!(
                    "input `{}` has shape {:?}; the model takes {:?} (-1: any)",
                    spec.name, input.shape, spec.shape
                ));
            }
            values.push(to_tract(input)?.into_tvalue());
        }
        if let Some(unknown) = inputs
            .iter()
            .find(|input| !self.inputs.iter().any(|spec| spec.name == input.name))
        {
            return Err(format!("the model has no input `{}`", unknown.name));
        }
        let outputs = self.plan.run(values).map_err(|error| {
            format!(
                "the model could not run on these inputs: {}",
                error.root_cause()
            )
        })?;
        outputs
            .iter()
            .zip(&self.outputs)
            .map(|(value, spec)| from_tract(&spec.name, value))
            .collect()
    }
}

fn to_tract(input: &OipTensor) -> Result<Tensor, String> {
    let shape: Vec<usize> = input
        .shape
        .iter()
        .map(|&dim| {
            usize::try_from(dim).map_err(|_| format!("input `{}`: dimension too large", input.name))
        })
        .collect::<Result<_, _>>()?;
    let fail = |error: TractError| format!("input `{}`: {}", input.name, error.root_cause());
    macro_rules! cast {
        ($values:expr, $t:ty) => {{
            let data: Vec<$t> = $values.iter().map(|&x| x as $t).collect();
            Tensor::from_shape(&shape, &data).map_err(fail)
        }};
    }
    match (&input.elements, input.datatype) {
        (Elements::Float(values), Datatype::Fp32) => cast!(values, f32),
        (Elements::Float(values), Datatype::Fp64) => cast!(values, f64),
        (Elements::Int(values), Datatype::Int8) => cast!(values, i8),
        (Elements::Int(values), Datatype::Int16) => cast!(values, i16),
        (Elements::Int(values), Datatype::Int32) => cast!(values, i32),
        (Elements::Int(values), Datatype::Int64) => cast!(values, i64),
        (Elements::Uint(values), Datatype::Uint8) => cast!(values, u8),
        (Elements::Uint(values), Datatype::Uint16) => cast!(values, u16),
        (Elements::Uint(values), Datatype::Uint32) => cast!(values, u32),
        (Elements::Uint(values), Datatype::Uint64) => cast!(values, u64),
        (Elements::Bool(values), Datatype::Bool) => {
            Tensor::from_shape(&shape, values).map_err(fail)
        }
        (_, datatype) => Err(format!(
            "input `{}`: {} tensors are not supported by this runtime yet",
            input.name,
            datatype.as_str()
        )),
    }
}

fn from_tract(name: &str, value: &TValue) -> Result<OipTensor, String> {
    let shape: Vec<u64> = value.shape().iter().map(|&dim| dim as u64).collect();
    let fail = |error: TractError| format!("output `{name}`: {}", error.root_cause());
    macro_rules! read {
        ($t:ty, $variant:ident, $as:ty) => {
            Elements::$variant(
                value
                    .try_as_plain_ram()
                    .and_then(|view| view.as_slice::<$t>().map(|s| s.to_vec()))
                    .map_err(fail)?
                    .iter()
                    .map(|&x| x as $as)
                    .collect(),
            )
        };
    }
    let datatype = datatype_of(value.datum_type())
        .ok_or_else(|| format!("output `{name}` has a type OIP cannot carry"))?;
    let elements = match value.datum_type() {
        DatumType::F32 => read!(f32, Float, f64),
        DatumType::F64 => read!(f64, Float, f64),
        DatumType::I8 => read!(i8, Int, i64),
        DatumType::I16 => read!(i16, Int, i64),
        DatumType::I32 => read!(i32, Int, i64),
        DatumType::I64 => read!(i64, Int, i64),
        DatumType::U8 => read!(u8, Uint, u64),
        DatumType::U16 => read!(u16, Uint, u64),
        DatumType::U32 => read!(u32, Uint, u64),
        DatumType::U64 => read!(u64, Uint, u64),
        DatumType::Bool => Elements::Bool(
            value
                .try_as_plain_ram()
                .and_then(|view| view.as_slice::<bool>().map(|s| s.to_vec()))
                .map_err(fail)?,
        ),
        other => {
            return Err(format!(
                "output `{name}` has type {other:?}, not supported yet"
            ));
        }
    };
    Ok(OipTensor {
        name: name.to_owned(),
        datatype,
        shape,
        elements,
    })
}

/// What runs a deployment's inferences: an ONNX model in-process, or an external OIP
/// server (`crate::upstream`).
#[derive(Clone)]
pub enum Runtime {
    Onnx(std::sync::Arc<OnnxModel>),
    Upstream(std::sync::Arc<crate::upstream::Upstream>),
}

impl Runtime {
    pub fn inputs(&self) -> &[TensorSpec] {
        match self {
            Runtime::Onnx(model) => &model.inputs,
            Runtime::Upstream(upstream) => &upstream.inputs,
        }
    }

    pub fn outputs(&self) -> &[TensorSpec] {
        match self {
            Runtime::Onnx(model) => &model.outputs,
            Runtime::Upstream(upstream) => &upstream.outputs,
        }
    }

    /// The OIP metadata's `platform`.
    pub fn platform(&self) -> &str {
        match self {
            Runtime::Onnx(_) => "onnx_onnxv1",
            Runtime::Upstream(upstream) => &upstream.platform,
        }
    }
}

impl From<std::sync::Arc<OnnxModel>> for Runtime {
    fn from(model: std::sync::Arc<OnnxModel>) -> Runtime {
        Runtime::Onnx(model)
    }
}

impl From<std::sync::Arc<crate::upstream::Upstream>> for Runtime {
    fn from(upstream: std::sync::Arc<crate::upstream::Upstream>) -> Runtime {
        Runtime::Upstream(upstream)
    }
}
