//! The CLI's own commands, beyond driving the library: writing new
//! projects, the component cache, showing build progress.

/// `println!` that gives up quietly when stdout has gone (`| head`) rather
/// than panicking; the driver keeps SIGPIPE ignored, because its links are
/// pipes too. Defined before the modules: they see it.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

pub mod cache;
pub mod new;
pub mod progress;
pub mod ps;
