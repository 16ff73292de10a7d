//! `loopback`: an echo, then pipelined throughput through the Loopback function, every
//! byte checked, with a progress bar.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use usbdf::{Host, Timeout};
use usbdf_loopback::{Loopback, StreamConfig};

use crate::error::{DemoError, Result, StepExt};

/// The gadget's buffer size (`bulk_buflen`): stream transfers are whole buffers.
pub const BULK_BUFLEN: usize = 4096;
/// How many progress steps a long run is split into.
const STEPS: usize = 50;
/// Bound of the echo.
const ECHO_TIMEOUT: Timeout = Timeout::millis(2000);

/// `loopback`'s flags.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct LoopbackArgs {
    /// Bytes per request: a multiple of the gadget's 4096-byte buffers.
    #[arg(long, default_value_t = 64 * 1024)]
    pub size: usize,
    /// Bytes to move in all (rounded down to whole requests).
    #[arg(long, default_value_t = 64 << 20)]
    pub total: usize,
    /// Requests in flight each way.
    #[arg(long, default_value_t = 8)]
    pub depth: usize,
}

impl Default for LoopbackArgs {
    fn default() -> Self {
        LoopbackArgs {
            size: 64 * 1024,
            total: 64 << 20,
            depth: 8,
        }
    }
}

/// What a loopback run did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoopbackOutcome {
    /// Bytes of the message echoed first.
    pub echoed: usize,
    /// Bytes written, echoed and checked.
    pub verified_bytes: u64,
    /// Time spent streaming.
    pub elapsed: Duration,
}

impl LoopbackOutcome {
    /// Megabytes (10^6 bytes) per second, each way.
    pub fn mb_per_s(&self) -> f64 {
        self.verified_bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Echo a short message, then stream `args.total` bytes through `lb` with a progress bar
/// on the terminal (none when stdout is not one).
///
/// # Errors
/// Bad sizes ([`DemoError::Argument`]); an echo or a stream that fails or differs.
pub fn stream(lb: &Loopback, args: &LoopbackArgs) -> Result<LoopbackOutcome> {
    if args.size == 0 || args.size % BULK_BUFLEN != 0 {
        return Err(DemoError::Argument(format!(
            "--size {} is not a non-zero multiple of the gadget's {BULK_BUFLEN}-byte buffers",
            args.size
        )));
    }
    if args.depth == 0 {
        return Err(DemoError::Argument("--depth must be at least 1".into()));
    }
    let total = args.total / args.size * args.size;
    if total == 0 {
        return Err(DemoError::Argument(format!(
            "--total {} is less than one request of {} bytes",
            args.total, args.size
        )));
    }
    let message = b"hello through the loopback gadget";
    let echoed = lb.echo(message, ECHO_TIMEOUT).step("echo a message")?.len();

    let bar = progress_bar(total as u64);
    // Each step is a stream of its own (the pipeline drains between steps): keep it long
    // enough to fill the pipeline many times over.
    let step = (total / STEPS).max(args.size * args.depth * 4) / args.size * args.size;
    let mut outcome = LoopbackOutcome {
        echoed,
        verified_bytes: 0,
        elapsed: Duration::ZERO,
    };
    let mut left = total;
    while left > 0 {
        let this = step.min(left);
        let t = lb
            .throughput(&StreamConfig::new(this, args.size, args.depth))
            .step(format!(
                "stream {this} bytes after {} verified",
                outcome.verified_bytes
            ))?;
        outcome.verified_bytes += t.bytes;
        outcome.elapsed += t.elapsed;
        bar.inc(t.bytes);
        left -= this;
    }
    bar.finish_and_clear();
    Ok(outcome)
}

fn progress_bar(total: u64) -> ProgressBar {
    let target = if std::io::stdout().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:30.cyan/blue} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// `loopback`: bind the drivers on `host` and stream through the first Loopback bound.
///
/// # Errors
/// No Loopback bound; as [`stream`].
pub fn run(host: &Host, args: &LoopbackArgs) -> Result<LoopbackOutcome> {
    let bound = crate::bind::bind(host)?;
    let handle = bound
        .loopbacks
        .first()
        .ok_or(DemoError::NoDevice("Loopback device (0525:a4a9)"))?;
    let lb = handle.get();
    let outcome = stream(&lb, args)?;
    println!(
        "loopback: {} bytes written, echoed and verified in requests of {} B, {} in flight: \
         {:.1} MB/s each way",
        outcome.verified_bytes,
        args.size,
        args.depth,
        outcome.mb_per_s()
    );
    Ok(outcome)
}
