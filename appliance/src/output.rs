//! Printing that never stops the appliance.
//!
//! `println!` and `eprintln!` panic when the write fails, and it does fail
//! whenever the reader of a pipe is gone: `palisade run | tee run.log`
//! and Ctrl-C kill `tee` with palisade, whose last lines (the final
//! counters) then meet `EPIPE` — and with the release profile's
//! `panic = "abort"` the process aborted before it closed its ports or
//! removed the demo's namespaces. What palisade prints is for the operator;
//! nothing it does depends on it being read, so [`say!`] (stdout) and
//! [`say_err!`] (stderr) write a whole line, drop it if the stream is gone,
//! and carry on. The first line stdout loses is noted once on stderr, which
//! often still reaches a terminal when only stdout went into a pipe.

use std::fmt;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a write to stdout has failed; later lines are not attempted.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);
/// Set once a write to stderr has failed.
static STDERR_GONE: AtomicBool = AtomicBool::new(false);

/// Writes `text` to stdout (whole, flushed); a failure is noted once on
/// stderr and otherwise ignored.
pub fn out(text: fmt::Arguments<'_>) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout.write_fmt(text).and_then(|()| stdout.flush()) {
        if !STDOUT_GONE.swap(true, Ordering::Relaxed) {
            err(format_args!(
                "palisade: warning: stdout is closed ({error}); its further output is dropped\n"
            ));
        }
    }
}

/// Writes `text` to stderr (whole); a failure is ignored.
pub fn err(text: fmt::Arguments<'_>) {
    if STDERR_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut stderr = std::io::stderr().lock();
    if stderr
        .write_fmt(text)
        .and_then(|()| stderr.flush())
        .is_err()
    {
        STDERR_GONE.store(true, Ordering::Relaxed);
    }
}

/// A line on stdout, like `println!`, that never panics (see the module
/// doc).
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// A line on stderr, like `eprintln!`, that never panics (see the module
/// doc).
macro_rules! say_err {
    ($($arg:tt)*) => {
        $crate::output::err(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {say, say_err};
