//! The one error type of the DPDK layer. DPDK reports failure the same way
//! everywhere (a negative return or `rte_errno`, explained by
//! `rte_strerror`), so every module of this crate shares it.

use std::ffi::CStr;

use palisade_dpdk_sys as sys;

/// Why a DPDK control-path operation failed. The fast path never builds one
/// (it would allocate the message); it returns counts and `Option`s instead.
#[derive(Debug, thiserror::Error)]
pub enum DpdkError {
    /// `Eal::init` was called a second time in this process; DPDK supports
    /// exactly one EAL initialisation per process.
    #[error("the DPDK EAL is already initialised in this process (it can start only once)")]
    AlreadyInitialised,

    /// A DPDK call failed with an errno value.
    #[error("{call} failed: {message} (errno {errno})")]
    Call {
        /// The DPDK function (and what it was asked) that failed.
        call: String,
        /// The positive errno value (`rte_errno` or a negated return code).
        errno: i32,
        /// `rte_strerror(errno)`.
        message: String,
    },

    /// A string passed to DPDK contains a NUL byte, which C cannot represent.
    #[error("{what} contains a NUL byte: {value:?}")]
    InteriorNul {
        /// Which argument.
        what: &'static str,
        /// The offending value.
        value: String,
    },

    /// No ethdev port has this name (for a vdev: the part of the devargs
    /// before the first comma; for PCI: the full address, `0000:00:03.0`).
    #[error("no DPDK port named {name:?} (known ports: {known})")]
    NoSuchPortName {
        /// The name looked up.
        name: String,
        /// The names DPDK does know, comma-separated, to make typos obvious.
        known: String,
    },

    /// No ethdev port has this id.
    #[error("no DPDK port with id {0}")]
    NoSuchPort(u16),

    /// Another live `Port` handle already owns this port.
    #[error("port {0} is already owned by another Port handle")]
    PortInUse(u16),

    /// A queue is out of range or already handed out.
    #[error("port {port}: {direction} queue {queue} is not available ({reason})")]
    QueueUnavailable {
        /// The port id.
        port: u16,
        /// `"rx"` or `"tx"`.
        direction: &'static str,
        /// The queue index asked for.
        queue: u16,
        /// Why not.
        reason: &'static str,
    },

    /// The port was asked for more queues than it (or this layer) supports.
    #[error("port {port}: {direction} queues {asked} exceed the maximum {max}")]
    TooManyQueues {
        /// The port id.
        port: u16,
        /// `"rx"` or `"tx"`.
        direction: &'static str,
        /// Queues asked for.
        asked: u16,
        /// The device's (or this layer's) limit.
        max: u16,
    },

    /// An operation that needs `Port::configure` first.
    #[error("port {0} is not configured by this handle (call configure first)")]
    NotConfigured(u16),

    /// An RSS key of the wrong length for the device.
    #[error("port {port}: RSS key is {given} bytes, the device takes {expected}")]
    RssKeyLength {
        /// The port id.
        port: u16,
        /// Length given.
        given: usize,
        /// Length the device reports (`hash_key_size`).
        expected: usize,
    },

    /// A ring capacity DPDK cannot build (zero or above `RTE_RING_SZ_MASK`).
    #[error("ring capacity {0} is out of range")]
    RingCapacity(u32),

    /// EAL clean-up was refused because mbufs are still outstanding (held by
    /// the program, in a ring, or in a port that could not be closed);
    /// freeing the memory under them would be a use-after-free.
    #[error("EAL clean-up skipped: {0} mbuf(s) still outstanding")]
    MbufsOutstanding(u64),

    /// Closures go to worker lcores from the main lcore only: it is the one
    /// thread allowed to drive `rte_eal_remote_launch`.
    #[error("lcores are launched from the main lcore {main} only, not from lcore {caller}")]
    NotMainLcore {
        /// The main lcore.
        main: u32,
        /// The calling thread's lcore (`u32::MAX`: not an EAL thread).
        caller: u32,
    },

    /// The lcore is not one of the EAL's worker lcores (not in `-l`, the
    /// main lcore itself, or a service or non-EAL lcore).
    #[error("lcore {lcore} is not an EAL worker lcore (worker lcores: {workers})")]
    NotAWorkerLcore {
        /// The lcore asked for.
        lcore: u32,
        /// The worker lcores there are, comma-separated.
        workers: String,
    },

    /// The lcore is still running an earlier closure.
    #[error("lcore {0} is busy running an earlier launch")]
    LcoreBusy(u32),
}

impl DpdkError {
    /// Builds a [`DpdkError::Call`] from a positive errno value.
    pub(crate) fn call(call: impl Into<String>, errno: i32) -> Self {
        let errno = errno.abs();
        Self::Call {
            call: call.into(),
            errno,
            message: strerror(errno),
        }
    }

    /// Builds a [`DpdkError::Call`] from the calling thread's `rte_errno`.
    pub(crate) fn from_rte_errno(call: impl Into<String>) -> Self {
        // SAFETY: reads a thread-local integer; no preconditions.
        let errno = unsafe { sys::palisade_errno() };
        Self::call(call, errno)
    }

    /// The errno value, if this error came from a DPDK call.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Call { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// `rte_strerror`, which knows DPDK's own codes (≥ 1000) as well as libc's.
fn strerror(errno: i32) -> String {
    // SAFETY: rte_strerror accepts any value and returns a pointer to a
    // NUL-terminated string (static or per-thread buffer), valid until the
    // next call on this thread; we copy it out at once.
    let text = unsafe { sys::rte_strerror(errno) };
    // SAFETY: as above, a valid NUL-terminated string.
    let text = unsafe { CStr::from_ptr(text) };
    text.to_string_lossy().into_owned()
}

/// Turns a DPDK return code (0 or positive = success, negative errno =
/// failure) into a `Result`.
pub(crate) fn check(call: impl FnOnce() -> String, rc: i32) -> Result<i32, DpdkError> {
    if rc < 0 {
        Err(DpdkError::call(call(), -rc))
    } else {
        Ok(rc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_error_carries_errno_and_strerror_text() {
        let error = DpdkError::call("rte_eth_dev_start(port 3)", -22);
        assert_eq!(error.errno(), Some(22));
        let text = error.to_string();
        assert!(
            text.starts_with("rte_eth_dev_start(port 3) failed: "),
            "{text}"
        );
        assert!(text.contains("Invalid argument"), "{text}");
        assert!(text.ends_with("(errno 22)"), "{text}");
    }

    #[test]
    fn dpdk_specific_errno_is_explained() {
        let error = DpdkError::call("rte_eal_init", sys::E_RTE_SECONDARY as i32);
        assert!(error.to_string().contains("secondary"), "{error}");
    }

    #[test]
    fn check_passes_success_and_converts_failure() {
        assert_eq!(check(|| "x".into(), 7).ok(), Some(7));
        let error = check(|| "rte_x".into(), -12).unwrap_err();
        assert_eq!(error.errno(), Some(12));
    }
}
