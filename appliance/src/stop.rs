//! SIGINT and SIGTERM during start-up: noticed between its steps.
//!
//! `palisade run` installs its signal handling before it touches anything
//! (EAL, ports, store, the demo's namespaces). From then on a stop signal
//! only sets a flag: a start-up step in progress finishes (EAL and port
//! start cannot be interrupted half-way), the next [`StopFlag::check`]
//! returns [`Interrupted`], and the error path releases what was built, in
//! reverse order, exactly as for any other start-up failure. Once the
//! appliance forwards, the signal loop takes the same signals as before.
//! The flag and that loop both see every signal (signal-hook runs all the
//! actions registered for a signal).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};

/// A stop signal arrived while palisade was `stage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{signal} while {stage}: stopped before forwarding")]
pub struct Interrupted {
    /// `SIGINT` or `SIGTERM`.
    pub signal: &'static str,
    /// What start-up was doing, e.g. "starting the ports".
    pub stage: &'static str,
}

/// Whether SIGINT or SIGTERM has arrived (the last one to arrive), shared
/// with the signal handlers.
#[derive(Debug, Clone)]
pub struct StopFlag {
    signal: Arc<AtomicUsize>,
}

impl StopFlag {
    /// Registers the flag for SIGINT and SIGTERM.
    pub fn register() -> std::io::Result<StopFlag> {
        let signal = Arc::new(AtomicUsize::new(0));
        for number in [SIGINT, SIGTERM] {
            // The value stored is the signal number (positive, never 0).
            signal_hook::flag::register_usize(number, Arc::clone(&signal), number as usize)?;
        }
        Ok(StopFlag { signal })
    }

    /// The stop signal received so far, if any.
    pub fn received(&self) -> Option<&'static str> {
        match self.signal.load(Ordering::Relaxed) {
            0 => None,
            n if n == SIGTERM as usize => Some("SIGTERM"),
            _ => Some("SIGINT"),
        }
    }

    /// Fails with [`Interrupted`] if a stop signal has arrived; `stage`
    /// names what start-up is doing (or has just done).
    pub fn check(&self, stage: &'static str) -> Result<(), Interrupted> {
        match self.received() {
            Some(signal) => Err(Interrupted { signal, stage }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raised_sigterm_is_reported_with_the_stage() {
        let flag = StopFlag::register().unwrap();
        assert_eq!(flag.check("testing"), Ok(()));
        signal_hook::low_level::raise(SIGTERM).unwrap();
        assert_eq!(
            flag.check("opening the store"),
            Err(Interrupted {
                signal: "SIGTERM",
                stage: "opening the store"
            })
        );
    }
}
