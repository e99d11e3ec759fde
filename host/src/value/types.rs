//! The WIT types a value is converted to, and an export's signature.

use super::MAX_DEPTH;
use wasmtime::component::types::ComponentFunc;
use wasmtime::component::Type;

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

    pub(super) fn from_wasmtime_at(ty: &Type, depth: usize) -> WitType {
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
