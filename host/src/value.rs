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

use std::fmt::Write as _;

use ciborium::Value as Cbor;
use wasmtime::component::types::ComponentFunc;
use wasmtime::component::{Type, Val};

/// Maximum nesting depth of values (and of types derived from wasmtime) accepted by this module.
pub const MAX_DEPTH: usize = 128;

/// Longest piece of text quoted verbatim in an error message.
const MAX_QUOTED_CHARS: usize = 40;

/// Owned description of a WIT value type, derived once per export from wasmtime's `Type`.
#[derive(Debug, Clone, PartialEq)]
pub enum WitType {
    /// `bool`
    Bool,
    /// `s8`
    S8,
    /// `u8`
    U8,
    /// `s16`
    S16,
    /// `u16`
    U16,
    /// `s32`
    S32,
    /// `u32`
    U32,
    /// `s64`
    S64,
    /// `u64`
    U64,
    /// `f32`
    F32,
    /// `f64`
    F64,
    /// `char`
    Char,
    /// `string`
    String,
    /// `list<T>`
    List(Box<WitType>),
    /// `record { name: T, … }` with field names in declaration order.
    Record(Vec<(String, WitType)>),
    /// `tuple<T, …>`
    Tuple(Vec<WitType>),
    /// `variant { case(T), case, … }` with cases in declaration order.
    Variant(Vec<(String, Option<WitType>)>),
    /// `enum { case, … }`
    Enum(Vec<String>),
    /// `option<T>`
    Option(Box<WitType>),
    /// `result<T, E>` with optional payload types.
    Result {
        /// Payload type of the `ok` case, if any.
        ok: Option<Box<WitType>>,
        /// Payload type of the `err` case, if any.
        err: Option<Box<WitType>>,
    },
    /// `flags { name, … }`
    Flags(Vec<String>),
    /// Resources, futures, streams, maps, fixed-length lists...: cannot cross the wire; keeps a name for errors
    Unsupported(String),
}

impl WitType {
    /// Converts wasmtime's (instance-bound) type description into an owned `WitType`.
    pub fn from_wasmtime(ty: &Type) -> WitType {
        Self::from_wasmtime_at(ty, 0)
    }

    fn from_wasmtime_at(ty: &Type, depth: usize) -> WitType {
        if depth > MAX_DEPTH {
            return WitType::Unsupported("(type nested too deeply)".to_string());
        }
        let sub = |t: &Type| Self::from_wasmtime_at(t, depth + 1);
        match ty {
            Type::Bool => WitType::Bool,
            Type::S8 => WitType::S8,
            Type::U8 => WitType::U8,
            Type::S16 => WitType::S16,
            Type::U16 => WitType::U16,
            Type::S32 => WitType::S32,
            Type::U32 => WitType::U32,
            Type::S64 => WitType::S64,
            Type::U64 => WitType::U64,
            Type::Float32 => WitType::F32,
            Type::Float64 => WitType::F64,
            Type::Char => WitType::Char,
            Type::String => WitType::String,
            Type::List(l) => WitType::List(Box::new(sub(&l.ty()))),
            Type::Record(r) => WitType::Record(r.fields().map(|f| (f.name.to_string(), sub(&f.ty))).collect()),
            Type::Tuple(t) => WitType::Tuple(t.types().map(|t| sub(&t)).collect()),
            Type::Variant(v) => {
                WitType::Variant(v.cases().map(|c| (c.name.to_string(), c.ty.as_ref().map(sub))).collect())
            }
            Type::Enum(e) => WitType::Enum(e.names().map(str::to_string).collect()),
            Type::Option(o) => WitType::Option(Box::new(sub(&o.ty()))),
            Type::Result(r) => {
                WitType::Result { ok: r.ok().map(|t| Box::new(sub(&t))), err: r.err().map(|t| Box::new(sub(&t))) }
            }
            Type::Flags(f) => WitType::Flags(f.names().map(str::to_string).collect()),
            Type::Own(_) => WitType::Unsupported("own<resource>".to_string()),
            Type::Borrow(_) => WitType::Unsupported("borrow<resource>".to_string()),
            Type::Future(f) => WitType::Unsupported(match f.ty() {
                Some(t) => format!("future<{}>", sub(&t).describe()),
                None => "future".to_string(),
            }),
            Type::Stream(s) => WitType::Unsupported(match s.ty() {
                Some(t) => format!("stream<{}>", sub(&t).describe()),
                None => "stream".to_string(),
            }),
            Type::ErrorContext => WitType::Unsupported("error-context".to_string()),
            Type::Map(m) => {
                WitType::Unsupported(format!("map<{}, {}>", sub(&m.key()).describe(), sub(&m.value()).describe()))
            }
            Type::FixedLengthList(l) => WitType::Unsupported(format!("list<{}, {}>", sub(&l.ty()).describe(), l.len())),
        }
    }

    /// Short WIT-like text for the type, e.g. `list<u8>` or `record{a: s32}`, used in errors.
    pub fn describe(&self) -> String {
        fn join<T>(items: &[T], f: impl Fn(&T) -> String) -> String {
            items.iter().map(f).collect::<Vec<_>>().join(", ")
        }
        match self {
            WitType::Bool => "bool".to_string(),
            WitType::S8 => "s8".to_string(),
            WitType::U8 => "u8".to_string(),
            WitType::S16 => "s16".to_string(),
            WitType::U16 => "u16".to_string(),
            WitType::S32 => "s32".to_string(),
            WitType::U32 => "u32".to_string(),
            WitType::S64 => "s64".to_string(),
            WitType::U64 => "u64".to_string(),
            WitType::F32 => "f32".to_string(),
            WitType::F64 => "f64".to_string(),
            WitType::Char => "char".to_string(),
            WitType::String => "string".to_string(),
            WitType::List(t) => format!("list<{}>", t.describe()),
            WitType::Record(fields) => format!("record{{{}}}", join(fields, |(n, t)| format!("{n}: {}", t.describe()))),
            WitType::Tuple(ts) => format!("tuple<{}>", join(ts, WitType::describe)),
            WitType::Variant(cases) => format!(
                "variant{{{}}}",
                join(cases, |(n, t)| match t {
                    Some(t) => format!("{n}({})", t.describe()),
                    None => n.clone(),
                })
            ),
            WitType::Enum(names) => format!("enum{{{}}}", names.join(", ")),
            WitType::Option(t) => format!("option<{}>", t.describe()),
            WitType::Result { ok, err } => match (ok, err) {
                (None, None) => "result".to_string(),
                (Some(o), None) => format!("result<{}>", o.describe()),
                (None, Some(e)) => format!("result<_, {}>", e.describe()),
                (Some(o), Some(e)) => format!("result<{}, {}>", o.describe(), e.describe()),
            },
            WitType::Flags(names) => format!("flags{{{}}}", names.join(", ")),
            WitType::Unsupported(name) => name.clone(),
        }
    }
}

/// A parameter list: the export's parameter names and types in order.
#[derive(Debug, Clone)]
pub struct Signature {
    /// Name of the exported function (used in error messages).
    pub func: String,
    /// Parameter names (as in WIT) and types, in declaration order.
    pub params: Vec<(String, WitType)>,
    /// Result type, if the function returns anything (several results become a tuple).
    pub results: Option<WitType>,
}

impl Signature {
    /// Captures the parameter and result types of a component function export.
    pub fn from_func_type(func: &str, ty: &ComponentFunc) -> Signature {
        let params = ty.params().map(|(name, t)| (name.to_string(), WitType::from_wasmtime(&t))).collect();
        let mut results: Vec<WitType> = ty.results().map(|t| WitType::from_wasmtime(&t)).collect();
        let results = match results.len() {
            0 => None,
            1 => results.pop(),
            _ => Some(WitType::Tuple(results)),
        };
        Signature { func: func.to_string(), params, results }
    }
}

/// Error converting one value; every variant carries the path to the offending part (e.g. ``parameter `n`.items[3].name``).
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ValueError {
    /// The CBOR value has the wrong shape for the WIT type.
    #[error("{path}: expected {expected}, found {found}")]
    WrongType {
        /// Where in the value the problem is.
        path: String,
        /// The expected WIT type (or shape).
        expected: String,
        /// Description of the CBOR actually found.
        found: String,
    },
    /// An integer does not fit the WIT integer type.
    #[error("{path}: {value} is out of range for {ty}")]
    OutOfRange {
        /// Where in the value the problem is.
        path: String,
        /// The integer found.
        value: String,
        /// The WIT integer type.
        ty: String,
    },
    /// A record map has a key that is not a field of the record.
    #[error("{path}: unknown field `{field}` (fields: {})", list_names(.fields))]
    UnknownField {
        /// Where in the value the problem is.
        path: String,
        /// The unknown key.
        field: String,
        /// The record's field names.
        fields: Vec<String>,
    },
    /// A record map lacks a field whose type is not an option.
    #[error("{path}: missing field `{field}`")]
    MissingField {
        /// Where in the value the problem is.
        path: String,
        /// The missing field.
        field: String,
    },
    /// A record map gives the same field twice (possibly in both kebab-case and snake_case).
    #[error("{path}: field `{field}` given more than once")]
    DuplicateField {
        /// Where in the value the problem is.
        path: String,
        /// The repeated field.
        field: String,
    },
    /// A variant, enum or result case name is unknown.
    #[error("{path}: unknown case `{case}` (cases: {})", list_names(.cases))]
    UnknownCase {
        /// Where in the value the problem is.
        path: String,
        /// The unknown case name.
        case: String,
        /// The valid case names.
        cases: Vec<String>,
    },
    /// A flags array names an unknown flag.
    #[error("{path}: unknown flag `{flag}` (flags: {})", list_names(.flags))]
    UnknownFlag {
        /// Where in the value the problem is.
        path: String,
        /// The unknown flag name.
        flag: String,
        /// The valid flag names.
        flags: Vec<String>,
    },
    /// A tuple array has the wrong number of elements.
    #[error("{path}: expected {expected} elements for {ty}, found {found}")]
    WrongLength {
        /// Where in the value the problem is.
        path: String,
        /// The tuple type.
        ty: String,
        /// Number of elements the tuple has.
        expected: usize,
        /// Number of elements found.
        found: usize,
    },
    /// The WIT type (resource, future, stream, map, ...) cannot be carried as CBOR.
    #[error("{path}: values of type {ty} cannot cross the wire")]
    Unsupported {
        /// Where in the value the problem is.
        path: String,
        /// The unsupported type.
        ty: String,
    },
    /// The value is nested deeper than [`MAX_DEPTH`].
    #[error("{path}: value nested more than {limit} levels deep")]
    TooDeep {
        /// Where in the value the limit was exceeded.
        path: String,
        /// The nesting limit.
        limit: usize,
    },
}

impl ValueError {
    /// The path to the offending part of the value, e.g. ``parameter `n`.items[3].name``.
    pub fn path(&self) -> &str {
        match self {
            ValueError::WrongType { path, .. }
            | ValueError::OutOfRange { path, .. }
            | ValueError::UnknownField { path, .. }
            | ValueError::MissingField { path, .. }
            | ValueError::DuplicateField { path, .. }
            | ValueError::UnknownCase { path, .. }
            | ValueError::UnknownFlag { path, .. }
            | ValueError::WrongLength { path, .. }
            | ValueError::Unsupported { path, .. }
            | ValueError::TooDeep { path, .. } => path,
        }
    }
}

/// Error converting call arguments; Display names the function, e.g. "bad arguments to `add`: missing parameter `b`".
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("bad arguments to `{func}`: {kind}")]
pub struct ArgsError {
    /// The function being called.
    pub func: String,
    /// What is wrong with the arguments.
    pub kind: ArgsErrorKind,
}

/// What is wrong with a call's arguments (see [`ArgsError`]).
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ArgsErrorKind {
    /// The arguments are neither an array, a map nor null.
    #[error("arguments must be a CBOR array (positional) or map (by name), found {found}")]
    BadContainer {
        /// Description of the CBOR found.
        found: String,
    },
    /// Positional arguments of the wrong count.
    #[error("{}, got {got}", expected_args(.params))]
    Arity {
        /// The function's parameter names.
        params: Vec<String>,
        /// Number of arguments given.
        got: usize,
    },
    /// A by-name argument names no parameter.
    #[error("unknown parameter `{name}` (parameters: {})", list_names(.params))]
    UnknownParam {
        /// The unknown name.
        name: String,
        /// The function's parameter names.
        params: Vec<String>,
    },
    /// A by-name call lacks a parameter whose type is not an option.
    #[error("missing parameter `{name}`")]
    MissingParam {
        /// The missing parameter.
        name: String,
    },
    /// A by-name call gives the same parameter twice.
    #[error("parameter `{name}` given more than once")]
    DuplicateParam {
        /// The repeated parameter.
        name: String,
    },
    /// A by-name call has a map key that is not text.
    #[error("parameter names must be text, found {found}")]
    BadParamName {
        /// Description of the key found.
        found: String,
    },
    /// One argument does not match its parameter's type.
    #[error("{0}")]
    Value(ValueError),
}

fn list_names(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

fn expected_args(params: &[String]) -> String {
    match params.len() {
        0 => "expected no arguments".to_string(),
        1 => format!("expected 1 argument ({})", params[0]),
        n => format!("expected {n} arguments ({})", params.join(", ")),
    }
}

// ---------------------------------------------------------------------------
// Paths (built lazily: rendered to text only when an error is reported)
// ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Seg<'a> {
    Root(&'a str),
    Field(&'a str),
    Index(usize),
}

#[derive(Clone, Copy)]
struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    seg: Seg<'a>,
}

impl<'a> Path<'a> {
    fn root(label: &'a str) -> Path<'a> {
        Path { parent: None, seg: Seg::Root(label) }
    }

    fn field<'b>(&'b self, name: &'b str) -> Path<'b> {
        Path { parent: Some(self), seg: Seg::Field(name) }
    }

    fn index(&self, i: usize) -> Path<'_> {
        Path { parent: Some(self), seg: Seg::Index(i) }
    }

    fn render(&self) -> String {
        let mut segs = Vec::new();
        let mut cur = Some(self);
        while let Some(p) = cur {
            segs.push(p.seg);
            cur = p.parent;
        }
        let mut out = String::new();
        for seg in segs.iter().rev() {
            match seg {
                Seg::Root(label) => out.push_str(label),
                Seg::Field(name) => {
                    out.push('.');
                    out.push_str(name);
                }
                Seg::Index(i) => {
                    let _ = write!(out, "[{i}]");
                }
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Strips any number of CBOR tags (iteratively, so hostile tag chains cannot overflow the stack).
fn strip_tags(mut v: &Cbor) -> &Cbor {
    while let Cbor::Tag(_, inner) = v {
        v = inner;
    }
    v
}

fn quote(s: &str) -> String {
    let mut chars = s.chars();
    let head: String = chars.by_ref().take(MAX_QUOTED_CHARS).collect();
    if chars.next().is_some() {
        format!("{head:?}…")
    } else {
        format!("{head:?}")
    }
}

/// Short description of a CBOR value for error messages.
fn describe_cbor(v: &Cbor) -> String {
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
fn find_name(names: &[&str], key: &str) -> Option<usize> {
    names.iter().position(|n| *n == key).or_else(|| {
        if key.contains('_') {
            let kebab = key.replace('_', "-");
            names.iter().position(|n| *n == kebab)
        } else {
            None
        }
    })
}

fn wrong_type(path: &Path<'_>, expected: String, found: &Cbor) -> ValueError {
    ValueError::WrongType { path: path.render(), expected, found: describe_cbor(found) }
}

fn too_deep(path: &Path<'_>) -> ValueError {
    ValueError::TooDeep { path: path.render(), limit: MAX_DEPTH }
}

fn int<T: TryFrom<i128>>(v: &Cbor, ty: &WitType, path: &Path<'_>) -> Result<T, ValueError> {
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

fn float(v: &Cbor, ty: &WitType, path: &Path<'_>) -> Result<f64, ValueError> {
    match v {
        Cbor::Float(f) => Ok(*f),
        Cbor::Integer(i) => Ok(i128::from(*i) as f64),
        other => Err(wrong_type(path, ty.describe(), other)),
    }
}

// ---------------------------------------------------------------------------
// CBOR → Val
// ---------------------------------------------------------------------------

/// Converts a CBOR value to a component `Val` of the given WIT type (errors are rooted at `value`).
pub fn cbor_to_val(v: &Cbor, ty: &WitType) -> Result<Val, ValueError> {
    decode(v, ty, &Path::root("value"), 0)
}

fn decode(v: &Cbor, ty: &WitType, path: &Path<'_>, depth: usize) -> Result<Val, ValueError> {
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

fn decode_record(
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
fn decode_case<'v>(
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
fn decode_payload(
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

// ---------------------------------------------------------------------------
// Val → CBOR
// ---------------------------------------------------------------------------

/// Converts a component `Val` to CBOR (errors are rooted at `value`).
pub fn val_to_cbor(v: &Val) -> Result<Cbor, ValueError> {
    encode(v, &Path::root("value"), 0)
}

fn encode(v: &Val, path: &Path<'_>, depth: usize) -> Result<Cbor, ValueError> {
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

// ---------------------------------------------------------------------------
// Calls
// ---------------------------------------------------------------------------

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

fn param_names(sig: &Signature) -> Vec<String> {
    sig.params.iter().map(|(n, _)| n.clone()).collect()
}

fn decode_param(name: &str, ty: &WitType, v: &Cbor) -> Result<Val, ArgsErrorKind> {
    let label = format!("parameter `{name}`");
    decode(v, ty, &Path::root(&label), 0).map_err(ArgsErrorKind::Value)
}

fn positional_args(sig: &Signature, items: &[Cbor]) -> Result<Vec<Val>, ArgsErrorKind> {
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

fn named_args(sig: &Signature, entries: &[(Cbor, Cbor)]) -> Result<Vec<Val>, ArgsErrorKind> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn int(n: i128) -> Cbor {
        Cbor::Integer(n.try_into().unwrap())
    }
    fn text(s: &str) -> Cbor {
        Cbor::Text(s.to_string())
    }
    fn map(entries: Vec<(&str, Cbor)>) -> Cbor {
        Cbor::Map(entries.into_iter().map(|(k, v)| (text(k), v)).collect())
    }
    fn some(v: Val) -> Val {
        Val::Option(Some(Box::new(v)))
    }
    fn rec(fields: Vec<(&str, WitType)>) -> WitType {
        WitType::Record(fields.into_iter().map(|(n, t)| (n.to_string(), t)).collect())
    }
    fn vrec(fields: Vec<(&str, Val)>) -> Val {
        Val::Record(fields.into_iter().map(|(n, v)| (n.to_string(), v)).collect())
    }
    fn opt(t: WitType) -> WitType {
        WitType::Option(Box::new(t))
    }
    fn list(t: WitType) -> WitType {
        WitType::List(Box::new(t))
    }
    fn names(ns: &[&str]) -> Vec<String> {
        ns.iter().map(|s| s.to_string()).collect()
    }
    fn variant() -> WitType {
        WitType::Variant(vec![
            ("empty".to_string(), None),
            ("num".to_string(), Some(WitType::S32)),
            ("point".to_string(), Some(rec(vec![("x", WitType::F64), ("y", WitType::F64)]))),
        ])
    }
    fn sig(func: &str, params: Vec<(&str, WitType)>) -> Signature {
        Signature {
            func: func.to_string(),
            params: params.into_iter().map(|(n, t)| (n.to_string(), t)).collect(),
            results: None,
        }
    }
    fn add() -> Signature {
        sig("add", vec![("a", WitType::U8), ("b", WitType::S64)])
    }

    /// cbor → Val equals `val`, Val → cbor equals `cbor`, and `val` → cbor → Val equals `val`.
    #[track_caller]
    fn round_trip(ty: &WitType, cbor: Cbor, val: Val) {
        let decoded = cbor_to_val(&cbor, ty).unwrap();
        assert_eq!(decoded, val, "decode of {cbor:?} as {}", ty.describe());
        assert_eq!(val_to_cbor(&decoded).unwrap(), cbor, "re-encode");
        let again = cbor_to_val(&val_to_cbor(&val).unwrap(), ty).unwrap();
        assert_eq!(again, val, "Val → cbor → Val");
    }

    #[track_caller]
    fn decode_err(cbor: Cbor, ty: &WitType) -> ValueError {
        cbor_to_val(&cbor, ty).unwrap_err()
    }

    #[track_caller]
    fn args_err(sig: &Signature, args: Cbor) -> String {
        args_to_vals(sig, &args).unwrap_err().to_string()
    }

    #[test]
    fn bool_round_trips() {
        round_trip(&WitType::Bool, Cbor::Bool(true), Val::Bool(true));
        round_trip(&WitType::Bool, Cbor::Bool(false), Val::Bool(false));
    }

    #[test]
    fn integers_round_trip_at_their_limits() {
        use WitType as T;
        round_trip(&T::S8, int(-128), Val::S8(i8::MIN));
        round_trip(&T::S8, int(127), Val::S8(i8::MAX));
        round_trip(&T::U8, int(0), Val::U8(0));
        round_trip(&T::U8, int(255), Val::U8(u8::MAX));
        round_trip(&T::S16, int(-32768), Val::S16(i16::MIN));
        round_trip(&T::U16, int(65535), Val::U16(u16::MAX));
        round_trip(&T::S32, int(i32::MIN.into()), Val::S32(i32::MIN));
        round_trip(&T::U32, int(u32::MAX.into()), Val::U32(u32::MAX));
        round_trip(&T::S64, int(i64::MIN.into()), Val::S64(i64::MIN));
        round_trip(&T::S64, int(i64::MAX.into()), Val::S64(i64::MAX));
        round_trip(&T::U64, int(u64::MAX.into()), Val::U64(u64::MAX));
    }

    #[test]
    fn integer_range_errors() {
        let e = decode_err(int(300), &WitType::U8);
        assert_eq!(e, ValueError::OutOfRange { path: "value".into(), value: "300".into(), ty: "u8".into() });
        assert_eq!(e.to_string(), "value: 300 is out of range for u8");
        assert_eq!(decode_err(int(-1), &WitType::U64).to_string(), "value: -1 is out of range for u64");
        assert_eq!(decode_err(int(128), &WitType::S8).to_string(), "value: 128 is out of range for s8");
        assert_eq!(
            decode_err(int(i128::from(i64::MIN) - 1), &WitType::S64).to_string(),
            "value: -9223372036854775809 is out of range for s64"
        );
    }

    #[test]
    fn floats_round_trip_and_accept_integers() {
        round_trip(&WitType::F64, Cbor::Float(1.5), Val::Float64(1.5));
        round_trip(&WitType::F64, Cbor::Float(-0.0), Val::Float64(-0.0));
        round_trip(&WitType::F32, Cbor::Float(0.25), Val::Float32(0.25));
        round_trip(&WitType::F64, Cbor::Float(f64::INFINITY), Val::Float64(f64::INFINITY));
        assert_eq!(cbor_to_val(&int(3), &WitType::F64).unwrap(), Val::Float64(3.0));
        assert_eq!(cbor_to_val(&int(-7), &WitType::F32).unwrap(), Val::Float32(-7.0));
        // NaN: Val's PartialEq treats NaN as equal to NaN; CBOR's does not.
        let nan = cbor_to_val(&Cbor::Float(f64::NAN), &WitType::F32).unwrap();
        assert_eq!(nan, Val::Float32(f32::NAN));
        match val_to_cbor(&nan).unwrap() {
            Cbor::Float(f) => assert!(f.is_nan()),
            other => panic!("expected float, got {other:?}"),
        }
        assert_eq!(decode_err(text("1.0"), &WitType::F64).to_string(), "value: expected f64, found text \"1.0\"");
    }

    #[test]
    fn char_and_string_round_trip() {
        round_trip(&WitType::Char, text("x"), Val::Char('x'));
        round_trip(&WitType::Char, text("🦀"), Val::Char('🦀'));
        round_trip(&WitType::String, text(""), Val::String(String::new()));
        round_trip(&WitType::String, text("héllo"), Val::String("héllo".into()));
        assert_eq!(decode_err(text("ab"), &WitType::Char).to_string(), "value: expected char, found text \"ab\"");
        assert_eq!(decode_err(text(""), &WitType::Char).to_string(), "value: expected char, found text \"\"");
        assert_eq!(decode_err(int(1), &WitType::String).to_string(), "value: expected string, found integer 1");
    }

    #[test]
    fn list_u8_is_bytes() {
        let ty = list(WitType::U8);
        let val = Val::List(vec![Val::U8(1), Val::U8(2), Val::U8(255)]);
        round_trip(&ty, Cbor::Bytes(vec![1, 2, 255]), val.clone());
        // An array of integers is accepted too, and encodes back as bytes.
        let from_array = cbor_to_val(&Cbor::Array(vec![int(1), int(2), int(255)]), &ty).unwrap();
        assert_eq!(from_array, val);
        // Empty list<u8>: encodes as an empty array, and both spellings decode.
        round_trip(&ty, Cbor::Array(vec![]), Val::List(vec![]));
        assert_eq!(cbor_to_val(&Cbor::Bytes(vec![]), &ty).unwrap(), Val::List(vec![]));
        // Out-of-range element inside an array.
        assert_eq!(
            decode_err(Cbor::Array(vec![int(1), int(256)]), &ty).to_string(),
            "value[1]: 256 is out of range for u8"
        );
        // Bytes are only for list<u8>.
        assert_eq!(
            decode_err(Cbor::Bytes(vec![1]), &list(WitType::U16)).to_string(),
            "value: expected list<u16>, found bytes (length 1)"
        );
    }

    #[test]
    fn lists_round_trip() {
        let ty = list(WitType::String);
        round_trip(
            &ty,
            Cbor::Array(vec![text("a"), text("b")]),
            Val::List(vec![Val::String("a".into()), Val::String("b".into())]),
        );
        round_trip(&ty, Cbor::Array(vec![]), Val::List(vec![]));
        let nested = list(list(WitType::U8));
        round_trip(
            &nested,
            Cbor::Array(vec![Cbor::Bytes(vec![7]), Cbor::Array(vec![])]),
            Val::List(vec![Val::List(vec![Val::U8(7)]), Val::List(vec![])]),
        );
        assert_eq!(decode_err(text("ab"), &ty).to_string(), "value: expected list<string>, found text \"ab\"");
    }

    #[test]
    fn records_round_trip_with_kebab_keys() {
        let ty = rec(vec![
            ("first-name", WitType::String),
            ("age", WitType::U32),
            ("tags", list(WitType::String)),
            ("inner", rec(vec![("ok", WitType::Bool)])),
        ]);
        let cbor = map(vec![
            ("first-name", text("Ada")),
            ("age", int(36)),
            ("tags", Cbor::Array(vec![text("math")])),
            ("inner", map(vec![("ok", Cbor::Bool(true))])),
        ]);
        let val = vrec(vec![
            ("first-name", Val::String("Ada".into())),
            ("age", Val::U32(36)),
            ("tags", Val::List(vec![Val::String("math".into())])),
            ("inner", vrec(vec![("ok", Val::Bool(true))])),
        ]);
        round_trip(&ty, cbor, val.clone());
        // snake_case keys and any key order are accepted on decode.
        let snake = map(vec![
            ("inner", map(vec![("ok", Cbor::Bool(true))])),
            ("age", int(36)),
            ("first_name", text("Ada")),
            ("tags", Cbor::Array(vec![text("math")])),
        ]);
        assert_eq!(cbor_to_val(&snake, &ty).unwrap(), val);
        // Empty record.
        round_trip(&rec(vec![]), Cbor::Map(vec![]), Val::Record(vec![]));
    }

    #[test]
    fn record_missing_option_field_is_none() {
        let ty = rec(vec![("a", WitType::S32), ("b-c", opt(WitType::String))]);
        let val = cbor_to_val(&map(vec![("a", int(1))]), &ty).unwrap();
        assert_eq!(val, vrec(vec![("a", Val::S32(1)), ("b-c", Val::Option(None))]));
        round_trip(
            &ty,
            map(vec![("a", int(1)), ("b-c", text("x"))]),
            vrec(vec![("a", Val::S32(1)), ("b-c", some(Val::String("x".into())))]),
        );
    }

    #[test]
    fn record_errors() {
        let ty = rec(vec![("a", WitType::S32), ("b-c", WitType::String)]);
        let e = decode_err(map(vec![("a", int(1)), ("b-c", text("x")), ("zz", int(0))]), &ty);
        assert_eq!(
            e,
            ValueError::UnknownField { path: "value".into(), field: "zz".into(), fields: names(&["a", "b-c"]) }
        );
        assert_eq!(e.to_string(), "value: unknown field `zz` (fields: a, b-c)");
        let e = decode_err(map(vec![("a", int(1))]), &ty);
        assert_eq!(e.to_string(), "value: missing field `b-c`");
        assert!(matches!(e, ValueError::MissingField { .. }));
        let e = decode_err(map(vec![("a", int(1)), ("b-c", text("x")), ("b_c", text("y"))]), &ty);
        assert_eq!(e.to_string(), "value: field `b-c` given more than once");
        let e = decode_err(Cbor::Map(vec![(int(1), int(1))]), &ty);
        assert_eq!(e.to_string(), "value: expected text field name, found integer 1");
        let e = decode_err(map(vec![("a", text("1")), ("b-c", text("x"))]), &ty);
        assert_eq!(e.to_string(), "value.a: expected s32, found text \"1\"");
        assert_eq!(
            decode_err(Cbor::Array(vec![]), &ty).to_string(),
            "value: expected record{a: s32, b-c: string}, found array of length 0"
        );
    }

    #[test]
    fn error_paths_are_nested() {
        let item = rec(vec![("name", WitType::String)]);
        let ty = rec(vec![("items", list(item))]);
        let items = (0..4).map(|i| map(vec![("name", if i == 3 { int(5) } else { text("ok") })])).collect();
        let e = decode_err(map(vec![("items", Cbor::Array(items))]), &ty);
        assert_eq!(e.path(), "value.items[3].name");
        assert_eq!(e.to_string(), "value.items[3].name: expected string, found integer 5");
    }

    #[test]
    fn tuples_round_trip() {
        let ty = WitType::Tuple(vec![WitType::S32, WitType::String, opt(WitType::Bool)]);
        round_trip(
            &ty,
            Cbor::Array(vec![int(-1), text("x"), Cbor::Null]),
            Val::Tuple(vec![Val::S32(-1), Val::String("x".into()), Val::Option(None)]),
        );
        round_trip(&WitType::Tuple(vec![]), Cbor::Array(vec![]), Val::Tuple(vec![]));
        let e = decode_err(Cbor::Array(vec![int(1)]), &ty);
        assert_eq!(
            e,
            ValueError::WrongLength {
                path: "value".into(),
                ty: "tuple<s32, string, option<bool>>".into(),
                expected: 3,
                found: 1
            }
        );
        assert_eq!(e.to_string(), "value: expected 3 elements for tuple<s32, string, option<bool>>, found 1");
    }

    #[test]
    fn variants_round_trip() {
        let ty = variant();
        round_trip(&ty, text("empty"), Val::Variant("empty".into(), None));
        round_trip(&ty, map(vec![("num", int(-5))]), Val::Variant("num".into(), Some(Box::new(Val::S32(-5)))));
        round_trip(
            &ty,
            map(vec![("point", map(vec![("x", Cbor::Float(1.0)), ("y", Cbor::Float(2.0))]))]),
            Val::Variant(
                "point".into(),
                Some(Box::new(vrec(vec![("x", Val::Float64(1.0)), ("y", Val::Float64(2.0))]))),
            ),
        );
        // A payload-less case may also be written as {"case": null}.
        assert_eq!(cbor_to_val(&map(vec![("empty", Cbor::Null)]), &ty).unwrap(), Val::Variant("empty".into(), None));
        // Nested: a list of variants inside a record.
        let outer = rec(vec![("shapes", list(variant()))]);
        round_trip(
            &outer,
            map(vec![("shapes", Cbor::Array(vec![text("empty"), map(vec![("num", int(1))])]))]),
            vrec(vec![(
                "shapes",
                Val::List(vec![
                    Val::Variant("empty".into(), None),
                    Val::Variant("num".into(), Some(Box::new(Val::S32(1)))),
                ]),
            )]),
        );
    }

    #[test]
    fn variant_errors() {
        let ty = variant();
        let e = decode_err(text("nope"), &ty);
        assert_eq!(
            e,
            ValueError::UnknownCase {
                path: "value".into(),
                case: "nope".into(),
                cases: names(&["empty", "num", "point"])
            }
        );
        assert_eq!(e.to_string(), "value: unknown case `nope` (cases: empty, num, point)");
        assert_eq!(
            decode_err(map(vec![("nope", int(1))]), &ty).to_string(),
            "value: unknown case `nope` (cases: empty, num, point)"
        );
        assert_eq!(
            decode_err(text("num"), &ty).to_string(),
            "value: expected {\"num\": s32} (variant{empty, num(s32), point(record{x: f64, y: f64})}), found text \"num\""
        );
        assert_eq!(
            decode_err(map(vec![("empty", int(1))]), &ty).to_string(),
            "value.empty: expected null (case `empty` has no payload), found integer 1"
        );
        assert_eq!(
            decode_err(map(vec![("num", text("x"))]), &ty).to_string(),
            "value.num: expected s32, found text \"x\""
        );
        let two = map(vec![("empty", Cbor::Null), ("num", int(1))]);
        assert!(matches!(decode_err(two, &ty), ValueError::WrongType { .. }));
    }

    #[test]
    fn enums_round_trip() {
        let ty = WitType::Enum(names(&["red", "dark-green"]));
        round_trip(&ty, text("red"), Val::Enum("red".into()));
        round_trip(&ty, text("dark-green"), Val::Enum("dark-green".into()));
        assert_eq!(decode_err(text("blue"), &ty).to_string(), "value: unknown case `blue` (cases: red, dark-green)");
        assert_eq!(decode_err(int(0), &ty).to_string(), "value: expected enum{red, dark-green}, found integer 0");
    }

    #[test]
    fn options_round_trip() {
        let ty = opt(WitType::U32);
        round_trip(&ty, Cbor::Null, Val::Option(None));
        round_trip(&ty, int(7), some(Val::U32(7)));
        // option<option<T>>: some(v) is a one-element array.
        let ty2 = opt(opt(WitType::U32));
        round_trip(&ty2, Cbor::Null, Val::Option(None));
        round_trip(&ty2, Cbor::Array(vec![Cbor::Null]), some(Val::Option(None)));
        round_trip(&ty2, Cbor::Array(vec![int(7)]), some(some(Val::U32(7))));
        let ty3 = opt(opt(opt(WitType::String)));
        round_trip(&ty3, Cbor::Array(vec![Cbor::Array(vec![Cbor::Null])]), some(some(Val::Option(None))));
        round_trip(&ty3, Cbor::Array(vec![Cbor::Array(vec![text("x")])]), some(some(some(Val::String("x".into())))));
        // option<list<T>>: some(empty list) is distinct from none.
        round_trip(&opt(list(WitType::S8)), Cbor::Array(vec![]), some(Val::List(vec![])));
        assert_eq!(
            decode_err(int(7), &ty2).to_string(),
            "value: expected option<option<u32>> (null or a one-element array), found integer 7"
        );
        assert_eq!(decode_err(text("7"), &ty).to_string(), "value: expected u32, found text \"7\"");
    }

    #[test]
    fn results_round_trip() {
        let both = WitType::Result { ok: Some(Box::new(WitType::String)), err: Some(Box::new(WitType::U16)) };
        round_trip(&both, map(vec![("ok", text("yes"))]), Val::Result(Ok(Some(Box::new(Val::String("yes".into()))))));
        round_trip(&both, map(vec![("err", int(404))]), Val::Result(Err(Some(Box::new(Val::U16(404))))));
        let none = WitType::Result { ok: None, err: None };
        round_trip(&none, map(vec![("ok", Cbor::Null)]), Val::Result(Ok(None)));
        round_trip(&none, map(vec![("err", Cbor::Null)]), Val::Result(Err(None)));
        let ok_only = WitType::Result { ok: Some(Box::new(variant())), err: None };
        round_trip(
            &ok_only,
            map(vec![("ok", text("empty"))]),
            Val::Result(Ok(Some(Box::new(Val::Variant("empty".into(), None))))),
        );
        round_trip(&ok_only, map(vec![("err", Cbor::Null)]), Val::Result(Err(None)));
        let err_only = WitType::Result { ok: None, err: Some(Box::new(WitType::String)) };
        round_trip(&err_only, map(vec![("ok", Cbor::Null)]), Val::Result(Ok(None)));
        round_trip(
            &err_only,
            map(vec![("err", text("boom"))]),
            Val::Result(Err(Some(Box::new(Val::String("boom".into()))))),
        );
        // result inside an option.
        round_trip(&opt(none.clone()), map(vec![("ok", Cbor::Null)]), some(Val::Result(Ok(None))));
    }

    #[test]
    fn result_errors() {
        let both = WitType::Result { ok: Some(Box::new(WitType::String)), err: Some(Box::new(WitType::U16)) };
        assert_eq!(
            decode_err(map(vec![("fine", int(1))]), &both).to_string(),
            "value: unknown case `fine` (cases: ok, err)"
        );
        assert_eq!(decode_err(map(vec![("err", int(-1))]), &both).to_string(), "value.err: -1 is out of range for u16");
        assert_eq!(decode_err(Cbor::Null, &both).to_string(), "value: expected result<string, u16>, found null");
        let none = WitType::Result { ok: None, err: None };
        assert_eq!(
            decode_err(map(vec![("ok", int(1))]), &none).to_string(),
            "value.ok: expected null (case `ok` has no payload), found integer 1"
        );
    }

    #[test]
    fn flags_round_trip() {
        let ty = WitType::Flags(names(&["read", "write", "exec-it"]));
        round_trip(&ty, Cbor::Array(vec![]), Val::Flags(vec![]));
        round_trip(&ty, Cbor::Array(vec![text("read"), text("exec-it")]), Val::Flags(names(&["read", "exec-it"])));
        // Order and duplicates are normalised on decode.
        assert_eq!(
            cbor_to_val(&Cbor::Array(vec![text("write"), text("read"), text("write")]), &ty).unwrap(),
            Val::Flags(names(&["read", "write"]))
        );
        let e = decode_err(Cbor::Array(vec![text("delete")]), &ty);
        assert_eq!(
            e,
            ValueError::UnknownFlag {
                path: "value".into(),
                flag: "delete".into(),
                flags: names(&["read", "write", "exec-it"])
            }
        );
        assert_eq!(e.to_string(), "value: unknown flag `delete` (flags: read, write, exec-it)");
        assert_eq!(
            decode_err(Cbor::Array(vec![int(1)]), &ty).to_string(),
            "value[0]: expected text flag name, found integer 1"
        );
    }

    #[test]
    fn tags_are_unwrapped() {
        let tagged = Cbor::Tag(24, Box::new(Cbor::Tag(1, Box::new(int(5)))));
        assert_eq!(cbor_to_val(&tagged, &WitType::U8).unwrap(), Val::U8(5));
        let ty = rec(vec![("a", WitType::String)]);
        let tagged_map = Cbor::Tag(
            9,
            Box::new(Cbor::Map(vec![(Cbor::Tag(2, Box::new(text("a"))), Cbor::Tag(3, Box::new(text("x"))))])),
        );
        assert_eq!(cbor_to_val(&tagged_map, &ty).unwrap(), vrec(vec![("a", Val::String("x".into()))]));
    }

    #[test]
    fn unsupported_types_are_errors() {
        let ty = rec(vec![("h", WitType::Unsupported("own<resource>".into()))]);
        let e = decode_err(map(vec![("h", int(1))]), &ty);
        assert_eq!(e, ValueError::Unsupported { path: "value.h".into(), ty: "own<resource>".into() });
        assert_eq!(e.to_string(), "value.h: values of type own<resource> cannot cross the wire");
        assert_eq!(
            val_to_cbor(&Val::Map(vec![])).unwrap_err().to_string(),
            "value: values of type map cannot cross the wire"
        );
        assert_eq!(
            val_to_cbor(&Val::List(vec![Val::FixedLengthList(vec![Val::U8(1)])])).unwrap_err().to_string(),
            "value[0]: values of type list<_, 1> cannot cross the wire"
        );
    }

    #[test]
    fn depth_limit_on_decode() {
        let mut ty = WitType::U8;
        let mut cbor = int(1);
        for _ in 0..200 {
            ty = list(ty);
            cbor = Cbor::Array(vec![cbor]);
        }
        let e = decode_err(cbor, &ty);
        assert!(matches!(e, ValueError::TooDeep { limit: MAX_DEPTH, .. }), "{e}");
        assert!(e.to_string().contains("nested more than 128 levels deep"));
        // Just within the limit is fine.
        let mut ty = WitType::U8;
        let mut cbor = int(1);
        for _ in 0..MAX_DEPTH {
            ty = list(ty);
            cbor = Cbor::Array(vec![cbor]);
        }
        assert!(cbor_to_val(&cbor, &ty).is_ok());
    }

    #[test]
    fn depth_limit_on_encode() {
        let mut val = Val::U8(1);
        for _ in 0..200 {
            val = Val::List(vec![val]);
        }
        let e = val_to_cbor(&val).unwrap_err();
        assert!(matches!(e, ValueError::TooDeep { .. }), "{e}");
    }

    #[test]
    fn hostile_tag_chain_does_not_overflow() {
        let mut cbor = int(1);
        for _ in 0..10_000 {
            cbor = Cbor::Tag(0, Box::new(cbor));
        }
        assert_eq!(cbor_to_val(&cbor, &WitType::U8).unwrap(), Val::U8(1));
        // Dismantle iteratively so the test itself does not overflow on drop.
        while let Cbor::Tag(_, inner) = cbor {
            cbor = *inner;
        }
    }

    #[test]
    fn describe_is_wit_like() {
        assert_eq!(list(WitType::U8).describe(), "list<u8>");
        assert_eq!(rec(vec![("a", WitType::S32)]).describe(), "record{a: s32}");
        assert_eq!(WitType::Result { ok: None, err: Some(Box::new(WitType::String)) }.describe(), "result<_, string>");
        assert_eq!(WitType::Result { ok: Some(Box::new(WitType::Char)), err: None }.describe(), "result<char>");
        assert_eq!(WitType::Result { ok: None, err: None }.describe(), "result");
        assert_eq!(WitType::Tuple(vec![WitType::F32, opt(WitType::Bool)]).describe(), "tuple<f32, option<bool>>");
        assert_eq!(WitType::Flags(names(&["a", "b"])).describe(), "flags{a, b}");
    }

    #[test]
    fn positional_and_named_args_agree() {
        let s =
            sig("greet", vec![("first-name", WitType::String), ("times", WitType::U8), ("loud", opt(WitType::Bool))]);
        let expected = vec![Val::String("Ada".into()), Val::U8(3), some(Val::Bool(true))];
        let positional = Cbor::Array(vec![text("Ada"), int(3), Cbor::Bool(true)]);
        let named = map(vec![("loud", Cbor::Bool(true)), ("times", int(3)), ("first-name", text("Ada"))]);
        let snake = map(vec![("first_name", text("Ada")), ("times", int(3)), ("loud", Cbor::Bool(true))]);
        assert_eq!(args_to_vals(&s, &positional).unwrap(), expected);
        assert_eq!(args_to_vals(&s, &named).unwrap(), expected);
        assert_eq!(args_to_vals(&s, &snake).unwrap(), expected);
        // A missing option parameter is none, by name or trailing positionally.
        let without = vec![Val::String("Ada".into()), Val::U8(3), Val::Option(None)];
        let named = map(vec![("first-name", text("Ada")), ("times", int(3))]);
        assert_eq!(args_to_vals(&s, &named).unwrap(), without);
        let positional = Cbor::Array(vec![text("Ada"), int(3)]);
        assert_eq!(args_to_vals(&s, &positional).unwrap(), without);
    }

    #[test]
    fn no_arguments() {
        let s = sig("ping", vec![]);
        assert_eq!(args_to_vals(&s, &Cbor::Null).unwrap(), vec![]);
        assert_eq!(args_to_vals(&s, &Cbor::Array(vec![])).unwrap(), vec![]);
        assert_eq!(args_to_vals(&s, &Cbor::Map(vec![])).unwrap(), vec![]);
        assert_eq!(args_err(&s, Cbor::Array(vec![int(1)])), "bad arguments to `ping`: expected no arguments, got 1");
        // Null for a function with only optional parameters: all none.
        let o = sig("maybe", vec![("x", opt(WitType::U8))]);
        assert_eq!(args_to_vals(&o, &Cbor::Null).unwrap(), vec![Val::Option(None)]);
    }

    #[test]
    fn args_errors() {
        let s = add();
        assert_eq!(
            args_err(&s, Cbor::Array(vec![int(1), text("x")])),
            "bad arguments to `add`: parameter `b`: expected s64, found text \"x\""
        );
        assert_eq!(
            args_err(&s, Cbor::Array(vec![int(1), int(2), int(3)])),
            "bad arguments to `add`: expected 2 arguments (a, b), got 3"
        );
        assert_eq!(
            args_err(&s, Cbor::Array(vec![int(1)])),
            "bad arguments to `add`: expected 2 arguments (a, b), got 1"
        );
        assert_eq!(args_err(&s, Cbor::Null), "bad arguments to `add`: expected 2 arguments (a, b), got 0");
        assert_eq!(
            args_err(&s, map(vec![("a", int(1)), ("b", int(2)), ("c", int(3))])),
            "bad arguments to `add`: unknown parameter `c` (parameters: a, b)"
        );
        assert_eq!(args_err(&s, map(vec![("a", int(1))])), "bad arguments to `add`: missing parameter `b`");
        assert_eq!(
            args_err(&s, Cbor::Array(vec![int(300), int(2)])),
            "bad arguments to `add`: parameter `a`: 300 is out of range for u8"
        );
        assert_eq!(
            args_err(&s, text("1, 2")),
            "bad arguments to `add`: arguments must be a CBOR array (positional) or map (by name), found text \"1, 2\""
        );
        assert_eq!(
            args_err(&s, map(vec![("a", int(1)), ("a", int(2))])),
            "bad arguments to `add`: parameter `a` given more than once"
        );
        assert_eq!(
            args_err(&s, Cbor::Map(vec![(int(0), int(1))])),
            "bad arguments to `add`: parameter names must be text, found integer 0"
        );
        let one = sig("neg", vec![("x", WitType::S32)]);
        assert_eq!(
            args_err(&one, Cbor::Array(vec![int(1), int(2)])),
            "bad arguments to `neg`: expected 1 argument (x), got 2"
        );
        let err = args_to_vals(&s, &Cbor::Array(vec![int(1), text("x")])).unwrap_err();
        assert_eq!(err.func, "add");
        assert_eq!(
            err.kind,
            ArgsErrorKind::Value(ValueError::WrongType {
                path: "parameter `b`".into(),
                expected: "s64".into(),
                found: "text \"x\"".into()
            })
        );
        // Nested paths are rooted at the parameter.
        let nested = sig("f", vec![("p", rec(vec![("xs", list(WitType::U8))]))]);
        assert_eq!(
            args_err(&nested, Cbor::Array(vec![map(vec![("xs", Cbor::Array(vec![int(0), int(-1)]))])])),
            "bad arguments to `f`: parameter `p`.xs[1]: -1 is out of range for u8"
        );
    }

    #[test]
    fn long_text_is_truncated_in_errors() {
        let long = "y".repeat(500);
        let msg = decode_err(text(&long), &WitType::U8).to_string();
        assert!(msg.len() < 100, "{msg}");
        assert!(msg.ends_with('…'));
    }

    #[test]
    fn results_to_cbor_shapes() {
        assert_eq!(results_to_cbor(&[]).unwrap(), Cbor::Null);
        assert_eq!(results_to_cbor(&[Val::U32(4)]).unwrap(), int(4));
        assert_eq!(
            results_to_cbor(&[Val::U32(4), Val::String("x".into())]).unwrap(),
            Cbor::Array(vec![int(4), text("x")])
        );
        assert_eq!(
            results_to_cbor(&[Val::Map(vec![])]).unwrap_err().to_string(),
            "result: values of type map cannot cross the wire"
        );
    }
}
