//! Guest stdout/stderr, forwarded line by line with the actor's name.
//!
//! Actor processes inherit the root's stdout and stderr, so writing a
//! prefixed line to our own stream is what puts it on the root's terminal.
//! Whole lines are written with one `write_all` so lines from different
//! actors never interleave mid-line.

use std::io::Write as _;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Which of the process's own streams a guest stream goes to.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// The process's stdout.
    Stdout,
    /// The process's stderr.
    Stderr,
}

/// A guest output stream that prefixes every line with `[name] `.
#[derive(Clone)]
pub struct Prefixed {
    inner: Arc<Mutex<LineBuf>>,
}

struct LineBuf {
    prefix: String,
    target: Target,
    partial: Vec<u8>,
}

impl LineBuf {
    fn emit(&mut self, line: &[u8]) {
        let mut out = Vec::with_capacity(self.prefix.len() + line.len() + 1);
        out.extend_from_slice(self.prefix.as_bytes());
        out.extend_from_slice(line);
        out.push(b'\n');
        let _ = match self.target {
            Target::Stdout => std::io::stdout().lock().write_all(&out),
            Target::Stderr => std::io::stderr().lock().write_all(&out),
        };
    }

    fn write(&mut self, buf: &[u8]) {
        self.partial.extend_from_slice(buf);
        while let Some(nl) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=nl).collect();
            self.emit(&line[..line.len() - 1]);
        }
    }

    fn finish(&mut self) {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            self.emit(&rest);
        }
    }
}

impl Prefixed {
    /// A stream for actor `name` writing to `target`.
    pub fn new(name: &str, target: Target) -> Prefixed {
        Prefixed { inner: Arc::new(Mutex::new(LineBuf { prefix: format!("[{name}] "), target, partial: Vec::new() })) }
    }

    /// Write out a final unterminated line, if any.
    pub fn finish(&self) {
        self.inner.lock().unwrap().finish();
    }
}

impl IsTerminal for Prefixed {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Prefixed {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.inner.lock().unwrap().write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.inner.lock().unwrap().finish();
        Poll::Ready(Ok(()))
    }
}
