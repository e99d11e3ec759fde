//! `Val` → CBOR.

use super::decode::*;
use super::error::*;
use super::path::*;
use super::MAX_DEPTH;
use ciborium::Value as Cbor;
use wasmtime::component::Val;

/// Converts a component `Val` to CBOR (errors are rooted at `value`).
pub fn val_to_cbor(v: &Val) -> Result<Cbor, ValueError> {
    encode(v, &Path::root("value"), 0)
}

pub(super) fn encode(v: &Val, path: &Path<'_>, depth: usize) -> Result<Cbor, ValueError> {
    if depth > MAX_DEPTH {
        return Err(too_deep(path));
    }
    let unsupported = |ty: String| ValueError::Unsupported { path: path.render(), ty };
    Ok(match v {
        Val::Bool(b) => Cbor::Bool(*b),
        Val::S8(n) => Cbor::Integer((*n).into()),
        Val::U8(n) => Cbor::Integer((*n).into()),
        Val::S16(n) => Cbor::Integer((*n).into()),
        Val::U16(n) => Cbor::Integer((*n).into()),
        Val::S32(n) => Cbor::Integer((*n).into()),
        Val::U32(n) => Cbor::Integer((*n).into()),
        Val::S64(n) => Cbor::Integer((*n).into()),
        Val::U64(n) => Cbor::Integer((*n).into()),
        Val::Float32(f) => Cbor::Float(f64::from(*f)),
        Val::Float64(f) => Cbor::Float(*f),
        Val::Char(c) => Cbor::Text(c.to_string()),
        Val::String(s) => Cbor::Text(s.clone()),
        Val::List(items) => {
            let bytes: Option<Vec<u8>> = items
                .iter()
                .map(|x| match x {
                    Val::U8(b) => Some(*b),
                    _ => None,
                })
                .collect();
            match bytes {
                Some(bytes) if !bytes.is_empty() => Cbor::Bytes(bytes),
                _ => Cbor::Array(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, x)| encode(x, &path.index(i), depth + 1))
                        .collect::<Result<_, _>>()?,
                ),
            }
        }
        Val::Record(fields) => Cbor::Map(
            fields
                .iter()
                .map(|(name, x)| Ok((Cbor::Text(name.clone()), encode(x, &path.field(name), depth + 1)?)))
                .collect::<Result<_, ValueError>>()?,
        ),
        Val::Tuple(items) => Cbor::Array(
            items.iter().enumerate().map(|(i, x)| encode(x, &path.index(i), depth + 1)).collect::<Result<_, _>>()?,
        ),
        Val::Variant(name, None) => Cbor::Text(name.clone()),
        Val::Variant(name, Some(payload)) => {
            Cbor::Map(vec![(Cbor::Text(name.clone()), encode(payload, &path.field(name), depth + 1)?)])
        }
        Val::Enum(name) => Cbor::Text(name.clone()),
        Val::Option(None) => Cbor::Null,
        Val::Option(Some(inner)) => match **inner {
            Val::Option(_) => Cbor::Array(vec![encode(inner, &path.index(0), depth + 1)?]),
            _ => encode(inner, path, depth + 1)?,
        },
        Val::Result(r) => {
            let (case, payload) = match r {
                Ok(p) => ("ok", p),
                Err(p) => ("err", p),
            };
            let payload = match payload {
                Some(p) => encode(p, &path.field(case), depth + 1)?,
                None => Cbor::Null,
            };
            Cbor::Map(vec![(Cbor::Text(case.to_string()), payload)])
        }
        Val::Flags(names) => Cbor::Array(names.iter().cloned().map(Cbor::Text).collect()),
        Val::Resource(r) => {
            return Err(unsupported(if r.owned() {
                "own<resource>".to_string()
            } else {
                "borrow<resource>".to_string()
            }))
        }
        Val::Future(_) => return Err(unsupported("future".to_string())),
        Val::Stream(_) => return Err(unsupported("stream".to_string())),
        Val::ErrorContext(_) => return Err(unsupported("error-context".to_string())),
        Val::Map(_) => return Err(unsupported("map".to_string())),
        Val::FixedLengthList(items) => return Err(unsupported(format!("list<_, {}>", items.len()))),
    })
}
