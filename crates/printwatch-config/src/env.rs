//! Reading environment variables through a trait.
//!
//! Secrets come from the environment (`password_env = "VAR"` and the
//! `PRINTWATCH_*` overrides). Reading it through [`Env`] keeps the process
//! environment out of the parser: tests pass a map instead of calling
//! `std::env::set_var`, which races with every other test thread.

use std::collections::{BTreeMap, HashMap};

/// Where environment variables are read from.
pub trait Env {
    /// The value of `name`, or `None` when unset (or not valid UTF-8).
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// An environment with no variables at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEnv;

impl Env for NoEnv {
    fn var(&self, _name: &str) -> Option<String> {
        None
    }
}

impl Env for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl Env for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}
