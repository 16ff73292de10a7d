//! Taking finished transfers from the backend and turning them into
//! completions.

use std::sync::Arc;
use std::task::{Context, Poll};

use super::{Phase, PipeInner, PipeShared, Place, Seg, SegKind, Slot};
use crate::backend::{RawCompletion, RawStatus};
use crate::descriptor::Direction;
use crate::options::ShortPacket;
use crate::status::Status;

impl PipeShared {
    /// Reap every finished backend transfer, in order.
    pub(super) fn reap_all(self: &Arc<Self>, g: &mut PipeInner) {
        let mut cx = Context::from_waker(&self.waker);
        loop {
            // Polling also (re)registers the waker with the backend, so it is
            // done after every submission even when nothing has finished.
            while !g.fifo.is_empty() {
                let c = match g.ep.poll_next_complete(&mut cx) {
                    Poll::Ready(c) => c,
                    Poll::Pending => break,
                };
                let Some(seg) = g.fifo.pop_front() else {
                    break;
                };
                self.reap_one(g, seg, c);
            }
            // A drain ends once everything is back, and not while a Fault
            // is being classified: its outcome decides what is resubmitted.
            if g.phase == Phase::Draining && g.fifo.is_empty() && !g.classifying {
                self.end_drain(g);
                continue;
            }
            break;
        }
    }

    fn reap_one(self: &Arc<Self>, g: &mut PipeInner, seg: Seg, c: RawCompletion) {
        let dir = self.info.direction;
        let mps = self.info.max_packet_size.max(1);
        // One borrow of the slot beside the other fields it updates.
        let PipeInner {
            slots,
            spare,
            resubmit,
            phase,
            ep,
            classifying,
            halted,
            target,
            ..
        } = g;
        let Some(slot) = slots.get_mut(seg.key) else {
            return;
        };
        slot.segs = slot.segs.saturating_sub(1);
        let actual = c.actual_len;
        let buffer = c.buffer;
        match seg.kind {
            SegKind::Data => {
                slot.done = actual;
                slot.parked = Some(buffer);
            }
            SegKind::Remainder => {
                if dir == Direction::In {
                    if let Some(p) = slot.parked.as_mut() {
                        let got = buffer.get(..actual).unwrap_or(&buffer[..]);
                        let room = p.remaining_capacity().min(got.len());
                        p.extend_from_slice(&got[..room]);
                    }
                }
                slot.done = slot.done.saturating_add(actual);
                spare.push(buffer);
            }
            SegKind::Zlp => {}
        }
        let ended_short = dir == Direction::In && actual < seg.len;
        match c.status {
            Ok(()) => match seg.kind {
                SegKind::Data | SegKind::Remainder => {
                    slot.data_complete = true;
                    if ended_short {
                        slot.short = true;
                    }
                }
                SegKind::Zlp => slot.zlp_complete = true,
            },
            Err(RawStatus::Cancelled) => {
                let data_seg = seg.kind != SegKind::Zlp;
                if data_seg {
                    // A zero-length OUT (an explicit ZLP) that was cancelled
                    // was not sent.
                    let all_moved = slot.submit_len > 0 && slot.done >= slot.submit_len;
                    // An IN segment that stopped mid-packet ended on a short
                    // packet before the cancel reached it.
                    let short_end = dir == Direction::In && actual % mps != 0;
                    if all_moved || short_end {
                        slot.data_complete = true;
                        slot.short |= short_end && slot.done < slot.submit_len;
                    }
                }
                let unfinished = !slot.data_complete || !slot.zlp_complete;
                if slot.cancel.is_none() && *phase == Phase::Running {
                    slot.os_cancels = slot.os_cancels.saturating_add(1);
                }
                if slot.os_cancels > 2 && slot.error.is_none() {
                    // The OS keeps cancelling this transfer on its own (usbfs
                    // refuses a submission to an endpoint that is not in the
                    // configuration with ENOENT, which nusb reports as
                    // `Cancelled`): stop resubmitting it.
                    slot.error = Some(Status::InvalidArgument);
                }
                if slot.cancel.is_none() && slot.error.is_none() && unfinished {
                    // Collateral of a cancel aimed at another request:
                    // resubmit what is left once the drain is over.
                    if slot.place != Place::Resubmit {
                        slot.place = Place::Resubmit;
                        resubmit.push_back(seg.key);
                    }
                    if *phase == Phase::Running {
                        // Cancelled by the OS, not by us (a port reset, for
                        // instance): drain everything so the remainder goes
                        // back in order.
                        *phase = Phase::Draining;
                        ep.cancel_all();
                    }
                }
            }
            Err(raw) => {
                let mut status = Status::from_raw(raw);
                if status == Status::Fault && self.device.is_gone() {
                    status = Status::Disconnected;
                }
                if slot.error.is_none() {
                    slot.error = Some(status);
                }
                if status == Status::Disconnected {
                    self.device.mark_gone();
                    *target = super::TargetState::Gone;
                } else if status == Status::Fault {
                    // Unplug or bus error? Ask the device off the event
                    // context. Until it answers, delivery waits, new sends
                    // are held, and the pipe is not called halted: the
                    // answer decides between `Disconnected` and a halt.
                    if !*classifying {
                        *classifying = true;
                        super::service::probe(self.clone());
                    }
                } else if status.halts_pipe() && halted.is_none() {
                    *halted = Some(status);
                }
            }
        }
        if slot.segs == 0 && slot.place != Place::Resubmit {
            self.finish(g, seg.key);
        }
        // After an error that halts the pipe or loses the device, requests
        // not yet in the backend would only meet the same fate.
        if g.halted.is_some() || g.target == super::TargetState::Gone {
            self.fail_held(g);
        }
    }

    /// End a drain: resubmit remainders in their original order, then the
    /// requests held back during it.
    pub(super) fn end_drain(self: &Arc<Self>, g: &mut PipeInner) {
        g.phase = Phase::Running;
        while let Some(key) = g.resubmit.pop_front() {
            let Some(slot) = g.slots.get_mut(key) else {
                continue;
            };
            let blocked = if g.target == super::TargetState::Gone {
                Some(Status::Disconnected)
            } else {
                g.halted
            };
            if slot.cancel.is_some() || blocked.is_some() {
                // A request nobody cancelled that cannot go on ends with the
                // pipe's status, never with a `Cancelled` it did not ask for.
                if slot.cancel.is_none() {
                    slot.error = blocked;
                }
                slot.place = Place::Backend;
                self.finish(g, key);
            } else {
                self.submit_remainder(g, key);
            }
        }
        if g.halted.is_some() || g.target == super::TargetState::Gone {
            self.fail_held(g);
            return;
        }
        while let Some(key) = g.held.pop_front() {
            self.submit_fresh(g, key);
            if g.phase == Phase::Draining {
                break;
            }
        }
    }

    /// Complete every held request with the pipe's halt status (or
    /// `Disconnected`), 0 bytes.
    pub(super) fn fail_held(&self, g: &mut PipeInner) {
        let status = if g.target == super::TargetState::Gone {
            Status::Disconnected
        } else {
            g.halted.unwrap_or(Status::Cancelled)
        };
        while let Some(key) = g.held.pop_front() {
            if let Some(slot) = g.slots.get_mut(key) {
                slot.error.get_or_insert(status);
            }
            self.finish(g, key);
        }
    }

    /// Turn a slot into its completion and queue it for delivery.
    pub(super) fn finish(&self, g: &mut PipeInner, key: usize) {
        let short_not_ok = g.policy.short_packet == ShortPacket::NotOk;
        let Some(slot) = g.slots.get_mut(key) else {
            return;
        };
        if slot.place == Place::Finished {
            return;
        }
        slot.place = Place::Finished;
        if let Some(buf) = slot.parked.take() {
            let stand_in = std::mem::replace(&mut slot.request.memory.buf, buf);
            if stand_in.capacity() == 0 {
                // The empty stand-in `submit_fresh` left: owns no memory, so
                // skip its out-of-line drop (one per request).
                std::mem::forget(stand_in);
            }
        }
        let (status, bytes) = final_status(slot, short_not_ok);
        tracing::trace!(
            pipe = self.info.address,
            request = slot.request.id().0,
            len = slot.len,
            bytes,
            ?status,
            latency_us = slot.sent_at.map(|t| t.elapsed().as_micros() as u64),
            "complete"
        );
        slot.outcome = Some((status, bytes));
        slot.queued = true;
        g.ready.push_back(key);
    }
}

fn final_status(slot: &Slot, short_not_ok: bool) -> (Status, usize) {
    let bytes = slot.done.min(slot.len);
    if let Some(e) = slot.error {
        return (e, bytes);
    }
    if slot.data_complete && slot.zlp_complete {
        if slot.done > slot.len {
            return (Status::Overflow, bytes);
        }
        if slot.short && short_not_ok {
            return (Status::ShortPacket, bytes);
        }
        return (Status::Success, bytes);
    }
    (slot.cancel.unwrap_or(Status::Cancelled), bytes)
}
