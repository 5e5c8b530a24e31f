//! Steward's data plane (issue 5): the Open Inference Protocol v2 over governed versions,
//! ONNX run in-process with tract, or forwarded to an external OIP server.
//!
//! The crate knows nothing of the registry: the caller hands it verified, decrypted model
//! bytes and swaps routing tables; `steward serve` derives those tables from the aliases.

pub mod binary;
pub mod metrics;
pub mod oip;
pub mod otlp;
pub mod reqlog;
pub mod runtime;
pub mod tensor;
pub mod trace;
pub mod upstream;

pub use oip::{Canary, Deployment, Flag, Gateway, Limits, Pinner, Shadow, Table};
pub use runtime::{OnnxModel, Runtime};
