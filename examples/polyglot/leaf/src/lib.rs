//! `polyglot-leaf`: a Rust grandchild, spawned by the Python actor to show
//! that the tree does not care which language each level is written in.

tractor::bindings!(
    "../../../wit",
    r#"
    package polyglot:leaf;
    world leaf {
        include tractor:actor/imports@0.1.0;
        export add: func(a: s64, b: s64) -> s64;
    }
"#
);

struct Leaf;

impl Guest for Leaf {
    fn add(a: i64, b: i64) -> i64 {
        let me = tractor::current();
        println!("rust leaf pid={} name={} depth={}: add({a}, {b})", me.pid, me.name, me.depth);
        a.wrapping_add(b)
    }
}

export!(Leaf);
