//! The integration tests, one binary (wasmtime linked once, the testbed
//! component built and precompiled once): real actor processes, real pipes,
//! real components built from source. Every test checks the process table
//! for its tree afterwards.

#[macro_use]
mod common;

mod aio;
mod chaos;
mod cli;
mod compat;
mod context;
mod discovery;
mod hostile;
mod new;
mod ps;
mod sandbox;
mod ssh;
mod ssh_cli;
mod ssh_faults;
mod ssh_netns;
mod tree;
