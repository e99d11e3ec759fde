//! CBOR → `Val`, typed by the WIT type.

use super::error::*;
use super::path::*;
use super::types::*;
use super::{MAX_DEPTH, MAX_QUOTED_CHARS};
use ciborium::Value as Cbor;
use wasmtime::component::Val;

/// Strips any number of CBOR tags (iteratively, so hostile tag chains cannot overflow the stack).
pub(super) fn strip_tags(mut v: &Cbor) -> &Cbor {
    while let Cbor::Tag(_, inner) = v {
        v = inner;
    }
    v
}

pub(super) fn quote(s: &str) -> String {
    let mut chars = s.chars();
    let head: String = chars.by_ref().take(MAX_QUOTED_CHARS).collect();
    if chars.next().is_some() {
        format!("{head:?}…")
    } else {
        format!("{head:?}")
    }
}

/// Short description of a CBOR value for error messages.
pub(super) fn describe_cbor(v: &Cbor) -> String {
    match v {
        Cbor::Integer(i) => format!("integer {}", i128::from(*i)),
        Cbor::Bytes(b) => format!("bytes (length {})", b.len()),
        Cbor::Float(f) => format!("float {f}"),
        Cbor::Text(s) => format!("text {}", quote(s)),
        Cbor::Bool(b) => format!("bool {b}"),
        Cbor::Null => "null".to_string(),
        Cbor::Tag(t, _) => format!("tag {t}"),
        Cbor::Array(a) => format!("array of length {}", a.len()),
        Cbor::Map(m) => format!("map with {} entries", m.len()),
        _ => "unsupported CBOR value".to_string(),
    }
}

/// Finds `key` among `names`, accepting snake_case spelling of a kebab-case name.
pub(super) fn find_name(names: &[&str], key: &str) -> Option<usize> {
    names.iter().position(|n| *n == key).or_else(|| {
        if key.contains('_') {
            let kebab = key.replace('_', "-");
            names.iter().position(|n| *n == kebab)
        } else {
            None
        }
    })
}

pub(super) fn wrong_type(path: &Path<'_>, expected: String, found: &Cbor) -> ValueError {
    ValueError::WrongType { path: path.render(), expected, found: describe_cbor(found) }
}

pub(super) fn too_deep(path: &Path<'_>) -> ValueError {
    ValueError::TooDeep { path: path.render(), limit: MAX_DEPTH }
}

pub(super) fn int<T: TryFrom<i128>>(v: &Cbor, ty: &WitType, path: &Path<'_>) -> Result<T, ValueError> {
    match v {
        Cbor::Integer(i) => {
            let n = i128::from(*i);
            T::try_from(n).map_err(|_| ValueError::OutOfRange {
                path: path.render(),
                value: n.to_string(),
                ty: ty.describe(),
            })
        }
        other => Err(wrong_type(path, ty.describe(), other)),
    }
}

pub(super) fn float(v: &Cbor, ty: &WitType, path: &Path<'_>) -> Result<f64, ValueError> {
    match v {
        Cbor::Float(f) => Ok(*f),
        Cbor::Integer(i) => Ok(i128::from(*i) as f64),
        other => Err(wrong_type(path, ty.describe(), other)),
    }
}

/// Converts a CBOR value to a component `Val` of the given WIT type (errors are rooted at `value`).
pub fn cbor_to_val(v: &Cbor, ty: &WitType) -> Result<Val, ValueError> {
    decode(v, ty, &Path::root("value"), 0)
}

pub(super) fn decode(v: &Cbor, ty: &WitType, path: &Path<'_>, depth: usize) -> Result<Val, ValueError> {
    if depth > MAX_DEPTH {
        return Err(too_deep(path));
    }
    let v = strip_tags(v);
    let wrong = || wrong_type(path, ty.describe(), v);
    Ok(match ty {
        WitType::Bool => match v {
            Cbor::Bool(b) => Val::Bool(*b),
            _ => return Err(wrong()),
        },
        WitType::S8 => Val::S8(int(v, ty, path)?),
        WitType::U8 => Val::U8(int(v, ty, path)?),
        WitType::S16 => Val::S16(int(v, ty, path)?),
        WitType::U16 => Val::U16(int(v, ty, path)?),
        WitType::S32 => Val::S32(int(v, ty, path)?),
        WitType::U32 => Val::U32(int(v, ty, path)?),
        WitType::S64 => Val::S64(int(v, ty, path)?),
        WitType::U64 => Val::U64(int(v, ty, path)?),
        WitType::F32 => Val::Float32(float(v, ty, path)? as f32),
        WitType::F64 => Val::Float64(float(v, ty, path)?),
        WitType::Char => match v {
            Cbor::Text(s) => {
                let mut chars = s.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Val::Char(c),
                    _ => return Err(wrong()),
                }
            }
            _ => return Err(wrong()),
        },
        WitType::String => match v {
            Cbor::Text(s) => Val::String(s.clone()),
            _ => return Err(wrong()),
        },
        WitType::List(elem) => match v {
            Cbor::Bytes(bytes) if **elem == WitType::U8 => Val::List(bytes.iter().map(|b| Val::U8(*b)).collect()),
            Cbor::Array(items) => Val::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| decode(item, elem, &path.index(i), depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            _ => return Err(wrong()),
        },
        WitType::Record(fields) => match v {
            Cbor::Map(entries) => decode_record(entries, fields, path, depth)?,
            _ => return Err(wrong()),
        },
        WitType::Tuple(types) => match v {
            Cbor::Array(items) if items.len() == types.len() => Val::Tuple(
                items
                    .iter()
                    .zip(types)
                    .enumerate()
                    .map(|(i, (item, t))| decode(item, t, &path.index(i), depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            Cbor::Array(items) => {
                return Err(ValueError::WrongLength {
                    path: path.render(),
                    ty: ty.describe(),
                    expected: types.len(),
                    found: items.len(),
                })
            }
            _ => return Err(wrong()),
        },
        WitType::Variant(cases) => {
            let names: Vec<&str> = cases.iter().map(|(n, _)| n.as_str()).collect();
            let (case, payload) = decode_case(v, ty, &names, path)?;
            let (name, payload_ty) = &cases[case];
            let payload = decode_payload(payload, payload_ty.as_ref(), name, ty, path, depth, v)?;
            Val::Variant(name.clone(), payload)
        }
        WitType::Enum(names) => match v {
            Cbor::Text(s) => match names.iter().find(|n| *n == s) {
                Some(n) => Val::Enum(n.clone()),
                None => {
                    return Err(ValueError::UnknownCase { path: path.render(), case: s.clone(), cases: names.clone() })
                }
            },
            _ => return Err(wrong()),
        },
        WitType::Option(inner) => match v {
            Cbor::Null => Val::Option(None),
            _ if matches!(**inner, WitType::Option(_)) => match v {
                Cbor::Array(items) if items.len() == 1 => {
                    Val::Option(Some(Box::new(decode(&items[0], inner, &path.index(0), depth + 1)?)))
                }
                _ => return Err(wrong_type(path, format!("{} (null or a one-element array)", ty.describe()), v)),
            },
            _ => Val::Option(Some(Box::new(decode(v, inner, path, depth + 1)?))),
        },
        WitType::Result { ok, err } => {
            let (case, payload) = decode_case(v, ty, &["ok", "err"], path)?;
            if case == 0 {
                Val::Result(Ok(decode_payload(payload, ok.as_deref(), "ok", ty, path, depth, v)?))
            } else {
                Val::Result(Err(decode_payload(payload, err.as_deref(), "err", ty, path, depth, v)?))
            }
        }
        WitType::Flags(names) => match v {
            Cbor::Array(items) => {
                let mut set = vec![false; names.len()];
                for (i, item) in items.iter().enumerate() {
                    match strip_tags(item) {
                        Cbor::Text(s) => match names.iter().position(|n| n == s) {
                            Some(k) => set[k] = true,
                            None => {
                                return Err(ValueError::UnknownFlag {
                                    path: path.render(),
                                    flag: s.clone(),
                                    flags: names.clone(),
                                })
                            }
                        },
                        other => return Err(wrong_type(&path.index(i), "text flag name".to_string(), other)),
                    }
                }
                Val::Flags(names.iter().zip(set).filter(|(_, on)| *on).map(|(n, _)| n.clone()).collect())
            }
            _ => return Err(wrong()),
        },
        WitType::Unsupported(name) => return Err(ValueError::Unsupported { path: path.render(), ty: name.clone() }),
    })
}

pub(super) fn decode_record(
    entries: &[(Cbor, Cbor)],
    fields: &[(String, WitType)],
    path: &Path<'_>,
    depth: usize,
) -> Result<Val, ValueError> {
    let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    let mut slots: Vec<Option<&Cbor>> = vec![None; fields.len()];
    for (key, value) in entries {
        let key = match strip_tags(key) {
            Cbor::Text(s) => s,
            other => return Err(wrong_type(path, "text field name".to_string(), other)),
        };
        let Some(i) = find_name(&names, key) else {
            return Err(ValueError::UnknownField {
                path: path.render(),
                field: key.clone(),
                fields: fields.iter().map(|(n, _)| n.clone()).collect(),
            });
        };
        if slots[i].is_some() {
            return Err(ValueError::DuplicateField { path: path.render(), field: fields[i].0.clone() });
        }
        slots[i] = Some(value);
    }
    let mut out = Vec::with_capacity(fields.len());
    for ((name, fty), slot) in fields.iter().zip(slots) {
        let val = match (slot, fty) {
            (Some(x), _) => decode(x, fty, &path.field(name), depth + 1)?,
            (None, WitType::Option(_)) => Val::Option(None),
            (None, _) => return Err(ValueError::MissingField { path: path.render(), field: name.clone() }),
        };
        out.push((name.clone(), val));
    }
    Ok(Val::Record(out))
}

/// Decodes the case of a variant or result: text `"case"` (no payload) or map `{"case": payload}`.
pub(super) fn decode_case<'v>(
    v: &'v Cbor,
    ty: &WitType,
    names: &[&str],
    path: &Path<'_>,
) -> Result<(usize, Option<&'v Cbor>), ValueError> {
    let (name, payload) = match v {
        Cbor::Text(s) => (s, None),
        Cbor::Map(entries) if entries.len() == 1 => match strip_tags(&entries[0].0) {
            Cbor::Text(s) => (s, Some(&entries[0].1)),
            other => return Err(wrong_type(path, "text case name".to_string(), other)),
        },
        _ => return Err(wrong_type(path, ty.describe(), v)),
    };
    match names.iter().position(|n| n == name) {
        Some(i) => Ok((i, payload)),
        None => Err(ValueError::UnknownCase {
            path: path.render(),
            case: name.clone(),
            cases: names.iter().map(|n| n.to_string()).collect(),
        }),
    }
}

/// Decodes the payload of a variant or result case against its (optional) payload type.
pub(super) fn decode_payload(
    payload: Option<&Cbor>,
    payload_ty: Option<&WitType>,
    case: &str,
    ty: &WitType,
    path: &Path<'_>,
    depth: usize,
    whole: &Cbor,
) -> Result<Option<Box<Val>>, ValueError> {
    match (payload_ty, payload) {
        (Some(t), Some(p)) => Ok(Some(Box::new(decode(p, t, &path.field(case), depth + 1)?))),
        (Some(t), None) => {
            Err(wrong_type(path, format!("{{\"{case}\": {}}} ({})", t.describe(), ty.describe()), whole))
        }
        (None, None) => Ok(None),
        (None, Some(p)) => match strip_tags(p) {
            Cbor::Null => Ok(None),
            other => Err(wrong_type(&path.field(case), format!("null (case `{case}` has no payload)"), other)),
        },
    }
}
