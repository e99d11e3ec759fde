//! The testbed's discovery probes: finding other actors of the tree and
//! calling them over peer links.

use crate::{Context, Error};

fn described(e: &Error) -> String {
    format!("{}: {}", tractor::kind_name(e.kind), e.message)
}

fn found(name: &str) -> Result<tractor::Portal, Error> {
    tractor::find_actor(name)?.ok_or_else(|| Error::new(format!("no actor named `{name}`")))
}

/// Find `name` and call its `add`.
pub fn find_and_add(name: String, a: i64, b: i64) -> Result<i64, Error> {
    found(&name)?.run("add", &(a, b))
}

/// The uid of the actor `name` finds and whether it is our child.
pub fn find_info(name: String) -> Result<Option<(String, bool)>, Error> {
    Ok(tractor::find_actor(&name)?.map(|p| (p.info().uid, p.is_child())))
}

/// Wait (up to `ms`) for `name`, then call its `add`.
pub fn wait_and_add(name: String, a: i64, b: i64, ms: u32) -> Result<i64, Error> {
    let d = std::time::Duration::from_millis(ms.into());
    let p = tractor::with_timeout(d, || tractor::wait_for_actor(&name))?;
    p.run("add", &(a, b))
}

/// Try to cancel the actor `name` finds; how that went.
pub fn find_and_cancel(name: String) -> Result<String, Error> {
    Ok(match found(&name)?.cancel_actor() {
        Ok(()) => "cancelled".into(),
        Err(e) => described(&e),
    })
}

/// Names in the registry, in registration order.
pub fn registry_names() -> Result<Vec<String>, Error> {
    Ok(tractor::registry()?.into_iter().map(|r| r.info.name).collect())
}

/// Open `produce(n)` on the actor `name` finds and sum what it streams.
pub fn find_and_sum(name: String, n: u32) -> Result<u64, Error> {
    let p = found(&name)?;
    let (ctx, ()) = p.open_context("produce", &(n,))?;
    let stream = ctx.open_stream()?;
    stream.send(&"go")?;
    let mut total = 0u64;
    while let Some(x) = stream.receive::<u64>()? {
        total += x;
    }
    Ok(total)
}

/// Find `name`, start a call of its `sleep-forever`, tell our caller (the
/// context is started), then report how that call ended and how a later
/// call fared: "kind: message|kind: message".
pub fn hold_a_call(ctx: &Context, name: String) -> Result<String, Error> {
    let p = found(&name)?;
    // The link works before the test strikes.
    p.run::<i64, _>("add", &(1, 1))?;
    let call = p.start::<(), _>("sleep-forever", &())?;
    tractor::callee(ctx).started(&())?;
    let first = match call.get() {
        Ok(()) => "returned".to_string(),
        Err(e) => described(&e),
    };
    let later = match p.run::<i64, _>("add", &(1, 1)) {
        Ok(v) => format!("returned {v}"),
        Err(e) => described(&e),
    };
    Ok(format!("{first}|{later}"))
}

/// Spawn a daemon of `component`; "spawned" or how the spawn failed.
pub fn spawn_of(component: String) -> Result<String, Error> {
    tractor::open_nursery(|n| match n.start_actor_of("probe", &component) {
        Ok(p) => {
            p.cancel_actor()?;
            Ok("spawned".into())
        }
        Err(e) => Ok(described(&e)),
    })
}
