//! The demo's error: what step failed, with the driver's error as its cause.

use std::error::Error as StdError;

/// A boxed cause, as the drivers return them.
pub type Cause = Box<dyn StdError + Send + Sync + 'static>;

/// What went wrong, with the chain of causes kept ([`std::error::Error::source`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// A step failed; `source` says why.
    #[error("{step}")]
    Step {
        /// What the demo was doing.
        step: String,
        /// The driver's or the framework's error.
        #[source]
        source: Cause,
    },
    /// A step ran but its result is wrong (an echo that differs, a line coding that did not
    /// stick).
    #[error("{0}")]
    Check(String),
    /// The command needs a device no driver is bound to.
    #[error("no {0} is bound (run `usbdf-demo list` to see what is)")]
    NoDevice(&'static str),
    /// A command-line value the demo cannot use.
    #[error("invalid argument: {0}")]
    Argument(String),
}

/// The demo's result type.
pub type Result<T, E = DemoError> = std::result::Result<T, E>;

/// Name the step a fallible call belongs to: `.step("set the line coding")?`.
pub trait StepExt<T> {
    /// Wrap the error as [`DemoError::Step`] with `step` as its message.
    ///
    /// # Errors
    /// The wrapped error.
    fn step(self, step: impl Into<String>) -> Result<T>;
}

impl<T, E: Into<Cause>> StepExt<T> for std::result::Result<T, E> {
    fn step(self, step: impl Into<String>) -> Result<T> {
        self.map_err(|e| DemoError::Step {
            step: step.into(),
            source: e.into(),
        })
    }
}

/// `error`, then each cause on its own line (`caused by: ...`), as `main` prints it.
pub fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = format!("error: {error}");
    let mut cause = error.source();
    while let Some(c) = cause {
        text.push_str(&format!("\n  caused by: {c}"));
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_lists_every_cause() {
        let inner = std::io::Error::other("the device stalled");
        let e: Result<()> = Err(inner).step("set the line coding");
        let e = e.unwrap_err();
        assert_eq!(
            chain(&e),
            "error: set the line coding\n  caused by: the device stalled"
        );
    }
}
