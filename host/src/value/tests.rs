//! The conversions, table by table.

use super::args::*;
use super::decode::*;
use super::encode::*;
use super::error::*;
use super::types::*;
use super::*;
use ciborium::Value as Cbor;
use wasmtime::component::Val;

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
    assert_eq!(e, ValueError::UnknownField { path: "value".into(), field: "zz".into(), fields: names(&["a", "b-c"]) });
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
        Val::Variant("point".into(), Some(Box::new(vrec(vec![("x", Val::Float64(1.0)), ("y", Val::Float64(2.0))])))),
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
        ValueError::UnknownCase { path: "value".into(), case: "nope".into(), cases: names(&["empty", "num", "point"]) }
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
    assert_eq!(decode_err(map(vec![("num", text("x"))]), &ty).to_string(), "value.num: expected s32, found text \"x\"");
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
    let tagged_map =
        Cbor::Tag(9, Box::new(Cbor::Map(vec![(Cbor::Tag(2, Box::new(text("a"))), Cbor::Tag(3, Box::new(text("x"))))])));
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
    let s = sig("greet", vec![("first-name", WitType::String), ("times", WitType::U8), ("loud", opt(WitType::Bool))]);
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
    assert_eq!(args_err(&s, Cbor::Array(vec![int(1)])), "bad arguments to `add`: expected 2 arguments (a, b), got 1");
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
    assert_eq!(results_to_cbor(&[Val::U32(4), Val::String("x".into())]).unwrap(), Cbor::Array(vec![int(4), text("x")]));
    assert_eq!(
        results_to_cbor(&[Val::Map(vec![])]).unwrap_err().to_string(),
        "result: values of type map cannot cross the wire"
    );
}
