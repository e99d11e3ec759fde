//! Values to and from the CBOR that crosses actors.

use crate::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Encode call arguments: a tuple or sequence is positional, a struct or
/// map is by name, `()` is no arguments, any other value is one argument.
pub fn encode_args<A: Serialize + ?Sized>(args: &A) -> Result<Vec<u8>> {
    let v = ciborium::Value::serialized(args).map_err(|e| Error::new(format!("cannot encode arguments: {e}")))?;
    let v = match v {
        ciborium::Value::Null => ciborium::Value::Array(vec![]),
        a @ (ciborium::Value::Array(_) | ciborium::Value::Map(_)) => a,
        one => ciborium::Value::Array(vec![one]),
    };
    let mut out = Vec::new();
    ciborium::into_writer(&v, &mut out).map_err(|e| Error::new(format!("cannot encode arguments: {e}")))?;
    Ok(out)
}

/// Decode a CBOR result into `R`.
pub fn decode<R: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<R> {
    ciborium::from_reader(bytes)
        .map_err(|e| Error::new(format!("cannot decode {what} as {}: {e}", std::any::type_name::<R>())))
}

/// Encode one value as CBOR.
pub fn encode_value<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).map_err(|e| Error::new(format!("cannot encode value: {e}")))?;
    Ok(out)
}
