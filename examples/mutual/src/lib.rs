//! `mutual`: two async actors that call each other, found by name.

use std::cell::Cell;
use tractor::aio;

tractor::aio_bindings!(
    "../../wit/v0.2",
    r#"
    package example:mutual;
    world mutual {
        include tractor:actor/imports@0.2.0;
        use tractor:actor/types@0.2.0.{error};

        export main: async func() -> result<_, error>;
        export ask: async func(question: u32) -> result<string, error>;
        export ask-back: async func(question: u32) -> result<string, error>;
        export answer: async func(question: u32) -> u32;
    }
"#
);

thread_local! {
    static ANSWERED: Cell<u32> = const { Cell::new(0) };
}

async fn found(name: &str) -> Result<aio::Portal, Error> {
    aio::find_actor(name).await?.ok_or_else(|| Error::new(format!("no actor named `{name}`")))
}

struct Actor;

impl Guest for Actor {
    async fn main() -> Result<(), Error> {
        aio::open_nursery(async |n| {
            let a = n.start_actor("a").await?;
            let b = n.start_actor("b").await?;
            // Both up (and so registered) before either looks the other up.
            a.run::<u32, _>("answer", &(0u32,)).await?;
            b.run::<u32, _>("answer", &(0u32,)).await?;
            for q in [6, 7] {
                println!("{}", a.run::<String, _>("ask", &(q,)).await?);
            }
            println!("a answered {} questions from b; no deadlock", a.run::<u32, _>("answer", &(0u32,)).await?);
            a.cancel_actor().await?;
            b.cancel_actor().await
        })
        .await
    }

    /// `a`: ask `b`, which asks us back before it answers.
    async fn ask(question: u32) -> Result<String, Error> {
        let b = found("b").await?;
        let said = b.run::<String, _>("ask-back", &(question,)).await?;
        Ok(format!("a asked b {question}: {said}"))
    }

    /// `b`: to answer, ask `a` (who is waiting for us).
    async fn ask_back(question: u32) -> Result<String, Error> {
        let a = found("a").await?;
        let n: u32 = a.run("answer", &(question,)).await?;
        Ok(format!("b asked a back, a said {n}"))
    }

    /// The square of `question`; for 0, how many were answered so far.
    async fn answer(question: u32) -> u32 {
        if question == 0 {
            return ANSWERED.with(|c| c.get());
        }
        ANSWERED.with(|c| c.set(c.get() + 1));
        question * question
    }
}

export!(Actor);
