//! What goes wrong converting values and arguments, with the path to it.

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

pub(super) fn list_names(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

pub(super) fn expected_args(params: &[String]) -> String {
    match params.len() {
        0 => "expected no arguments".to_string(),
        1 => format!("expected 1 argument ({})", params[0]),
        n => format!("expected {n} arguments ({})", params.join(", ")),
    }
}
