//! Steward's domain: the entities of the registry, the rules that govern them, and the
//! tamper-evident audit log.
//!
//! Architecture invariant: this crate does no I/O, reads no clock and spawns nothing.
//! Times, keys and stored bytes are handed in by the caller; every rule here is a pure
//! function and is tested without a server or a database.

pub mod audit;
pub mod calendar;
pub mod canonical;
pub mod docs;
pub mod domain;
pub mod drift;
pub mod import;
pub mod manifest;
pub mod promotion;
pub mod routing;
pub mod schema;
pub mod token;
