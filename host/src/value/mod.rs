//! CBOR ⇄ component-model value conversion for calls between actors.
//!
//! Actors call each other's component exports with arguments and results
//! carried as CBOR ([`ciborium::Value`]). This module converts between CBOR
//! and wasmtime's dynamic [`Val`]s, guided by the export's own WIT signature
//! (captured once per export as a [`Signature`] of owned [`WitType`]s).
//!
//! # Mapping
//!
//! | WIT type                     | CBOR                                                                 |
//! |------------------------------|----------------------------------------------------------------------|
//! | `bool`                       | bool                                                                 |
//! | `s8` … `u64`                 | integer (range-checked on decode)                                    |
//! | `f32`, `f64`                 | float (an integer is also accepted on decode)                        |
//! | `char`                       | text holding exactly one Unicode scalar value                        |
//! | `string`                     | text                                                                 |
//! | `list<u8>`                   | bytes (decode also accepts an array of integers)                     |
//! | `list<T>`                    | array                                                                |
//! | `record { a-b: T, … }`       | map with text keys `"a-b"` (decode also accepts `"a_b"`); a missing `option` field is `none` |
//! | `tuple<T, U, …>`             | array of exactly that length                                         |
//! | `variant` case without payload | text `"case-name"`                                                 |
//! | `variant` case with payload  | single-entry map `{"case-name": payload}`                            |
//! | `enum`                       | text `"case-name"`                                                   |
//! | `flags`                      | array of text flag names                                             |
//! | `option<T>`                  | `none` = null, `some(v)` = `v`                                        |
//! | `option<option<T>>` (nested) | `none` = null, `some(v)` = one-element array `[v]`                    |
//! | `result<T, E>`               | single-entry map `{"ok": v}` or `{"err": e}`; a missing payload is null |
//! | resources, `future`, `stream`, `error-context`, `map`, fixed-length lists | not supported: an error names the type |
//!
//! CBOR tags are ignored on decode (the tagged value is decoded). Values are
//! never nested deeper than [`MAX_DEPTH`]; deeper input is an error, not a
//! stack overflow. Since a [`Val`] does not record its element type, an empty
//! list always encodes as an empty array (which decodes fine as `list<u8>`).
//!
//! Call arguments ([`args_to_vals`]) are either positional (a CBOR array in
//! parameter order) or by name (a CBOR map with the parameter names as text
//! keys); results ([`results_to_cbor`]) become a single CBOR value.

mod args;
mod decode;
mod encode;
mod error;
mod path;
#[cfg(test)]
mod tests;
mod types;

pub use args::{args_to_vals, results_to_cbor};
pub use decode::cbor_to_val;
pub use encode::val_to_cbor;
pub use error::{ArgsError, ArgsErrorKind, ValueError};
pub use types::{Signature, WitType};

/// Maximum nesting depth of values (and of types derived from wasmtime) accepted by this module.
pub const MAX_DEPTH: usize = 128;

/// Longest piece of text quoted verbatim in an error message.
const MAX_QUOTED_CHARS: usize = 40;
