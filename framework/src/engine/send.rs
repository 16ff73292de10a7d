//! Accepting a request: checks, a slot, and its segments.

use std::sync::Arc;
use std::time::Instant;

use super::{Phase, PipeInner, PipeShared, Place, Seg, SegKind, Slot, TargetState, Waiter};
use crate::backend::Buffer;
use crate::descriptor::{Direction, TransferType};
use crate::error::{SendError, SendErrorKind};
use crate::options::{PacketSizeCheck, SendOptions, Zlp};
use crate::request::Request;

/// Where a send's completion goes.
pub(crate) enum SendTo {
    Routine(super::CompletionRoutine),
    Future,
}

impl PipeShared {
    /// Check and accept one request. `in_len` is the IN length (ignored for
    /// OUT, which sends the buffer's initialized bytes).
    pub(crate) fn send(
        self: &Arc<Self>,
        mut request: Request,
        in_len: usize,
        opts: &SendOptions,
        to: SendTo,
    ) -> Result<(usize, u32), SendError> {
        let mut g = self.lock();
        let refuse = |kind, request| Err(SendError::new(kind, request));

        if self.device.is_gone() || g.target == TargetState::Gone {
            return refuse(SendErrorKind::Disconnected, request);
        }
        if g.target == TargetState::Stopped && !opts.ignore_target_state {
            return refuse(SendErrorKind::TargetStopped, request);
        }
        if let Some(s) = g.halted {
            return refuse(SendErrorKind::Halted(s), request);
        }
        if opts.timeout.is_some_and(|t| t.is_zero()) {
            return refuse(SendErrorKind::ZeroTimeout, request);
        }
        let mps = self.info.max_packet_size.max(1);
        let capacity = request.memory.capacity();
        let (len, submit_len) = match self.info.direction {
            Direction::In => {
                if in_len == 0 {
                    return refuse(SendErrorKind::ZeroLengthIn, request);
                }
                let submit_len = if in_len % mps == 0 {
                    in_len
                } else if g.policy.packet_size_check == PacketSizeCheck::Enforce {
                    return refuse(
                        SendErrorKind::NotMultipleOfMaxPacket {
                            len: in_len,
                            max_packet_size: mps,
                        },
                        request,
                    );
                } else {
                    in_len.div_ceil(mps).saturating_mul(mps)
                };
                if in_len > g.policy.max_transfer {
                    return refuse(
                        SendErrorKind::TooLarge {
                            len: in_len,
                            max: g.policy.max_transfer,
                        },
                        request,
                    );
                }
                if submit_len > capacity {
                    return refuse(
                        SendErrorKind::BufferTooSmall {
                            len: submit_len,
                            capacity,
                        },
                        request,
                    );
                }
                (in_len, submit_len)
            }
            Direction::Out => {
                let len = request.memory.len();
                if len > g.policy.max_transfer {
                    return refuse(
                        SendErrorKind::TooLarge {
                            len,
                            max: g.policy.max_transfer,
                        },
                        request,
                    );
                }
                (len, len)
            }
        };
        if g.slots.len() >= g.policy.max_in_flight {
            return refuse(SendErrorKind::QueueFull, request);
        }

        let zlp_needed = self.info.direction == Direction::Out
            && self.info.transfer_type == TransferType::Bulk
            && g.policy.zlp == Zlp::Auto
            && len > 0
            && len % mps == 0;
        // A clock read only when something needs it (a deadline, the trace).
        let traced = tracing::enabled!(tracing::Level::TRACE);
        let now = (opts.timeout.is_some() || traced).then(Instant::now);
        let deadline = opts
            .timeout
            .zip(now)
            .and_then(|(t, now)| now.checked_add(t));
        let gen = g.next_gen;
        g.next_gen = g.next_gen.wrapping_add(1).max(1);
        if self.info.direction == Direction::In {
            request.memory.buf.set_requested_len(submit_len);
        }
        let waiter = match to {
            SendTo::Routine(r) => Waiter::Routine(r),
            SendTo::Future => Waiter::Future(None),
        };
        let id = request.id();
        let key = g.slots.insert(Slot {
            gen,
            request,
            parked: None,
            len,
            submit_len,
            done: 0,
            segs: 0,
            place: Place::Held,
            data_complete: false,
            zlp_needed,
            zlp_complete: !zlp_needed,
            short: false,
            cancel: None,
            error: None,
            os_cancels: 0,
            waiter,
            deadline,
            sent_at: now.filter(|_| traced),
            outcome: None,
            queued: false,
        });
        g.active += 1;
        self.device.request_sent();
        tracing::trace!(
            pipe = self.info.address,
            request = id.0,
            len,
            timeout_us = opts.timeout.map(|t| t.as_micros() as u64),
            "send"
        );

        if g.phase == Phase::Draining || g.classifying || !g.held.is_empty() {
            g.held.push_back(key);
        } else {
            self.submit_fresh(&mut g, key);
        }
        if let Some(d) = deadline {
            self.arm(&mut g, d);
        }
        // Poll the backend (which registers the waker), unless a dispatcher
        // is at work: it reaps, and so polls, right after the delivery it is
        // running — the usual case of a request resubmitted from its
        // completion routine. Saves a backend poll per such request.
        if !g.dispatching {
            self.reap_all(&mut g);
        }
        Ok((key, gen))
    }

    /// Hand a slot that has not been in the backend yet to the backend.
    pub(super) fn submit_fresh(&self, g: &mut PipeInner, key: usize) {
        let Some(slot) = g.slots.get_mut(key) else {
            return;
        };
        let buf = std::mem::replace(&mut slot.request.memory.buf, Buffer::new(0));
        let data_len = slot.submit_len;
        let zlp = slot.zlp_needed;
        slot.place = Place::Backend;
        slot.segs += 1 + u8::from(zlp);
        g.fifo.push_back(Seg {
            key,
            kind: SegKind::Data,
            len: data_len,
        });
        g.ep.submit(buf);
        if zlp {
            g.fifo.push_back(Seg {
                key,
                kind: SegKind::Zlp,
                len: 0,
            });
            g.ep.submit(Buffer::new(0));
        }
    }

    /// Resubmit what is left of a slot whose segment was cut short by a
    /// `cancel_all` aimed at another request.
    pub(super) fn submit_remainder(&self, g: &mut PipeInner, key: usize) {
        let PipeInner {
            slots,
            fifo,
            ep,
            spare,
            ..
        } = g;
        let Some(slot) = slots.get_mut(key) else {
            return;
        };
        slot.place = Place::Backend;
        if !slot.data_complete {
            let remaining = slot.submit_len.saturating_sub(slot.done);
            let mut scratch = take_spare(spare, &**ep, remaining);
            match self.info.direction {
                Direction::Out => {
                    let src = slot.parked.as_deref().unwrap_or(&[]);
                    let tail = src.get(slot.done..slot.len).unwrap_or(&[]);
                    scratch.extend_from_slice(tail);
                }
                Direction::In => scratch.set_requested_len(remaining),
            }
            slot.segs += 1;
            fifo.push_back(Seg {
                key,
                kind: SegKind::Remainder,
                len: remaining,
            });
            ep.submit(scratch);
        }
        if !slot.zlp_complete {
            slot.segs += 1;
            fifo.push_back(Seg {
                key,
                kind: SegKind::Zlp,
                len: 0,
            });
            ep.submit(Buffer::new(0));
        }
    }
}

/// A scratch buffer of at least `len` bytes, reusing one from an earlier
/// cancel when it is big enough.
fn take_spare(
    spare: &mut Vec<Buffer>,
    ep: &dyn crate::backend::BackendEndpoint,
    len: usize,
) -> Buffer {
    if let Some(i) = spare.iter().position(|b| b.capacity() >= len) {
        let mut b = spare.swap_remove(i);
        b.clear();
        b.set_requested_len(len);
        return b;
    }
    ep.allocate(len)
}
