//! Cancellation of a running build, shared by every stage: the CLI's signal handlers and the Python
//! binding's Ctrl-C set it; planning checks it between files, readers between batches, the writer
//! before the commit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};

/// Cancels a running build from another thread: a signal handler's flag, Python's Ctrl-C. A
/// cancelled build stops its readers, removes its temporary file and returns
/// [`Error::Cancelled`]; a previous output is untouched.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A handle that has not been cancelled.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Asks the build to stop (returns at once; the build stops within a batch).
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// The flag itself, for code that sets it from a signal handler.
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0)
    }

    /// `Err(Error::Cancelled)` once cancelled.
    pub fn check(&self) -> Result<()> {
        match self.is_cancelled() {
            true => Err(Error::Cancelled),
            false => Ok(()),
        }
    }
}
