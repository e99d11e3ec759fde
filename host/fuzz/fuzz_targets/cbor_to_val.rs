//! Any bytes decoded as CBOR, then converted against a set of WIT types and
//! as call arguments: conversion must return a value or an error, never
//! panic or recurse without bound; a value that converts must round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tractor_host::value::{args_to_vals, cbor_to_val, val_to_cbor, Signature, WitType};

fn types() -> Vec<WitType> {
    use WitType::*;
    let person = Record(vec![("name".into(), String), ("age".into(), U8), ("nick".into(), Option(Box::new(String)))]);
    vec![
        Bool,
        S8,
        U64,
        F64,
        Char,
        String,
        List(Box::new(U8)),
        List(Box::new(person.clone())),
        person.clone(),
        Tuple(vec![S32, String]),
        Variant(vec![("circle".into(), Some(F64)), ("dot".into(), None)]),
        Enum(vec!["a".into(), "b".into()]),
        Option(Box::new(Option(Box::new(U32)))),
        Result { ok: Some(Box::new(person)), err: Some(Box::new(String)) },
        Flags(vec!["read".into(), "write".into()]),
        List(Box::new(List(Box::new(List(Box::new(S16)))))),
    ]
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = ciborium::from_reader::<ciborium::Value, _>(data) else { return };
    for ty in types() {
        if let Ok(val) = cbor_to_val(&value, &ty) {
            let back = val_to_cbor(&val).expect("a converted value encodes");
            let again = cbor_to_val(&back, &ty).expect("an encoded value converts back");
            assert_eq!(again, val);
        }
    }
    let sig = Signature {
        func: "f".into(),
        params: vec![("a".into(), WitType::S64), ("b".into(), WitType::Option(Box::new(WitType::String)))],
        results: None,
    };
    let _ = args_to_vals(&sig, &value);
});
