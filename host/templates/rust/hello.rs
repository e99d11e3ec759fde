//! {{name}}: `main` runs in the root actor; it starts a child of the same
//! component and collects what the child's `greet` returns.

tractor::bindings!("wit", r#"{{world}}"#);

struct Actor;

impl Guest for Actor {
    fn main() -> tractor::Result<()> {
        let me = tractor::current();
        println!("hello from {} (pid {})", me.name, me.pid);
        tractor::open_nursery(|n| {
            let child = n.run_in_actor("greeter", "greet", &("world",))?;
            let answer: String = child.result()?;
            println!("{answer}");
            Ok(())
        })
    }

    fn greet(who: String) -> String {
        let me = tractor::current();
        format!("hello, {who}, from {} (pid {})", me.name, me.pid)
    }
}

export!(Actor);
