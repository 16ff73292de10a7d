//! The default control pipe: standard, class and vendor requests.

mod pipe;
mod setup;

pub use pipe::{ControlCancel, ControlCompletion, ControlPipe, ControlSent};
pub use setup::{standard, ControlDirection, Recipient, RequestKind, SetupPacket};

use std::task::Poll;

use crate::backend::{BackendControl, ControlResult};

/// Block the calling thread until a backend control transfer finishes.
pub(crate) fn block_on_control(mut xfer: Box<dyn BackendControl>) -> ControlResult {
    futures::executor::block_on(std::future::poll_fn(move |cx| match xfer.poll(cx) {
        Poll::Ready(r) => Poll::Ready(r),
        Poll::Pending => Poll::Pending,
    }))
}
