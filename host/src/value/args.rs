//! Call arguments (positional or by name) and results.

use super::decode::*;
use super::encode::*;
use super::error::*;
use super::path::*;
use super::types::*;
use ciborium::Value as Cbor;
use wasmtime::component::Val;

/// Positional (CBOR array) or by-name (CBOR map with text keys) arguments → Vals in parameter order.
/// A missing parameter whose type is `option<T>` becomes none; CBOR null and an empty array both mean "no arguments" for a 0-parameter function.
pub fn args_to_vals(sig: &Signature, args: &Cbor) -> Result<Vec<Val>, ArgsError> {
    let fail = |kind| ArgsError { func: sig.func.clone(), kind };
    match strip_tags(args) {
        Cbor::Null => positional_args(sig, &[]).map_err(fail),
        Cbor::Array(items) => positional_args(sig, items).map_err(fail),
        Cbor::Map(entries) => named_args(sig, entries).map_err(fail),
        other => Err(fail(ArgsErrorKind::BadContainer { found: describe_cbor(other) })),
    }
}

pub(super) fn param_names(sig: &Signature) -> Vec<String> {
    sig.params.iter().map(|(n, _)| n.clone()).collect()
}

pub(super) fn decode_param(name: &str, ty: &WitType, v: &Cbor) -> Result<Val, ArgsErrorKind> {
    let label = format!("parameter `{name}`");
    decode(v, ty, &Path::root(&label), 0).map_err(ArgsErrorKind::Value)
}

pub(super) fn positional_args(sig: &Signature, items: &[Cbor]) -> Result<Vec<Val>, ArgsErrorKind> {
    let n = sig.params.len();
    let omitted_ok = items.len() <= n && sig.params[items.len()..].iter().all(|(_, t)| matches!(t, WitType::Option(_)));
    if !omitted_ok {
        return Err(ArgsErrorKind::Arity { params: param_names(sig), got: items.len() });
    }
    sig.params
        .iter()
        .enumerate()
        .map(|(i, (name, ty))| match items.get(i) {
            Some(v) => decode_param(name, ty, v),
            None => Ok(Val::Option(None)),
        })
        .collect()
}

pub(super) fn named_args(sig: &Signature, entries: &[(Cbor, Cbor)]) -> Result<Vec<Val>, ArgsErrorKind> {
    let names: Vec<&str> = sig.params.iter().map(|(n, _)| n.as_str()).collect();
    let mut slots: Vec<Option<&Cbor>> = vec![None; names.len()];
    for (key, value) in entries {
        let key = match strip_tags(key) {
            Cbor::Text(s) => s,
            other => return Err(ArgsErrorKind::BadParamName { found: describe_cbor(other) }),
        };
        let Some(i) = find_name(&names, key) else {
            return Err(ArgsErrorKind::UnknownParam { name: key.clone(), params: param_names(sig) });
        };
        if slots[i].is_some() {
            return Err(ArgsErrorKind::DuplicateParam { name: names[i].to_string() });
        }
        slots[i] = Some(value);
    }
    sig.params
        .iter()
        .zip(slots)
        .map(|((name, ty), slot)| match (slot, ty) {
            (Some(v), _) => decode_param(name, ty, v),
            (None, WitType::Option(_)) => Ok(Val::Option(None)),
            (None, _) => Err(ArgsErrorKind::MissingParam { name: name.clone() }),
        })
        .collect()
}

/// Results of a call → one CBOR value: no result → Null, one result → that value.
pub fn results_to_cbor(results: &[Val]) -> Result<Cbor, ValueError> {
    let root = Path::root("result");
    match results {
        [] => Ok(Cbor::Null),
        [one] => encode(one, &root, 0),
        many => Ok(Cbor::Array(
            many.iter().enumerate().map(|(i, v)| encode(v, &root.index(i), 1)).collect::<Result<_, _>>()?,
        )),
    }
}
