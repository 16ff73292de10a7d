//! A scripted backend endpoint for the engine's own tests: the test moves
//! packets and decides when transfers finish, so every cancel/complete
//! interleaving can be produced on purpose.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::backend::{
    BackendControl, BackendDevice, BackendEndpoint, BackendError, BackendErrorKind,
    BackendInterface, Buffer, ControlResult, RawCompletion, RawStatus,
};
use crate::control::SetupPacket;
use crate::descriptor::{Direction, TransferType};

pub(crate) struct Xfer {
    pub buf: Buffer,
    /// IN: requested; OUT: bytes to send.
    pub want: usize,
    pub moved: usize,
    pub status: Option<Result<(), RawStatus>>,
}

#[derive(Default)]
pub(crate) struct FakeState {
    pub queue: VecDeque<Xfer>,
    pub waker: Option<Waker>,
    /// Bytes the "device" accepted from OUT transfers, in bus order.
    pub rx: Vec<u8>,
    /// Next byte value the "device" sends on IN.
    pub tx_counter: u64,
    pub cancel_alls: usize,
    /// Zero-length packets the "device" saw.
    pub zlps: usize,
    pub submitted: usize,
}

#[derive(Clone)]
pub(crate) struct Fake {
    pub state: Arc<Mutex<FakeState>>,
    pub dir: Direction,
    pub mps: usize,
}

impl Fake {
    pub fn new(dir: Direction, mps: usize) -> Fake {
        Fake {
            state: Arc::default(),
            dir,
            mps,
        }
    }

    fn wake(&self) {
        let w = self.state.lock().unwrap().waker.clone();
        if let Some(w) = w {
            w.wake();
        }
    }

    /// Move up to `packets` packets on the bus for the oldest unfinished
    /// transfers. IN packets are full unless `short` says the next packet
    /// is short by that many bytes.
    pub fn advance(&self, mut packets: usize, short: Option<usize>) {
        {
            let mut st = self.state.lock().unwrap();
            let st = &mut *st;
            for x in st.queue.iter_mut() {
                if x.status.is_some() {
                    continue;
                }
                while packets > 0 && x.status.is_none() {
                    let room = x.want - x.moved;
                    match self.dir {
                        Direction::Out => {
                            let n = room.min(self.mps);
                            if n == 0 {
                                st.zlps += 1;
                            }
                            st.rx.extend_from_slice(&x.buf[x.moved..x.moved + n]);
                            x.moved += n;
                            packets -= 1;
                            if x.moved == x.want {
                                x.status = Some(Ok(()));
                            }
                        }
                        Direction::In => {
                            let mut n = room.min(self.mps);
                            let is_short = short.is_some() && packets == 1;
                            if is_short {
                                n = n.saturating_sub(short.unwrap_or(0)).min(self.mps - 1);
                            }
                            for _ in 0..n {
                                x.buf.extend_from_slice(&[(st.tx_counter % 251) as u8]);
                                st.tx_counter += 1;
                            }
                            x.moved += n;
                            packets -= 1;
                            if x.moved == x.want || n < self.mps {
                                x.status = Some(Ok(()));
                            }
                        }
                    }
                }
                if packets == 0 {
                    break;
                }
            }
        }
        self.wake();
    }

    /// Finish the oldest unfinished transfer with an error status.
    pub fn fail_next(&self, status: RawStatus) {
        {
            let mut st = self.state.lock().unwrap();
            if let Some(x) = st.queue.iter_mut().find(|x| x.status.is_none()) {
                x.status = Some(Err(status));
            }
        }
        self.wake();
    }

    pub fn rx(&self) -> Vec<u8> {
        self.state.lock().unwrap().rx.clone()
    }

    pub fn pending(&self) -> usize {
        self.state.lock().unwrap().queue.len()
    }

    pub fn cancel_alls(&self) -> usize {
        self.state.lock().unwrap().cancel_alls
    }
}

impl BackendEndpoint for Fake {
    fn address(&self) -> u8 {
        match self.dir {
            Direction::In => 0x81,
            Direction::Out => 0x01,
        }
    }
    fn max_packet_size(&self) -> usize {
        self.mps
    }
    fn allocate(&self, len: usize) -> Buffer {
        Buffer::new(len)
    }
    fn submit(&mut self, mut buf: Buffer) {
        let mut st = self.state.lock().unwrap();
        st.submitted += 1;
        let want = match self.dir {
            Direction::Out => buf.len(),
            Direction::In => {
                buf.clear();
                buf.requested_len()
            }
        };
        let bad = self.dir == Direction::In && (want == 0 || want % self.mps != 0);
        st.queue.push_back(Xfer {
            buf,
            want,
            moved: 0,
            status: if bad {
                Some(Err(RawStatus::InvalidArgument))
            } else {
                None
            },
        });
    }
    fn pending(&self) -> usize {
        self.state.lock().unwrap().queue.len()
    }
    fn cancel_all(&mut self) {
        {
            let mut st = self.state.lock().unwrap();
            st.cancel_alls += 1;
            for x in st.queue.iter_mut() {
                if x.status.is_none() {
                    x.status = Some(Err(RawStatus::Cancelled));
                }
            }
        }
        // Like nusb on some paths: wake synchronously, inside the engine lock.
        self.wake();
    }
    fn poll_next_complete(&mut self, cx: &mut Context<'_>) -> Poll<RawCompletion> {
        let mut st = self.state.lock().unwrap();
        st.waker = Some(cx.waker().clone());
        if st.queue.front().is_some_and(|x| x.status.is_some()) {
            let x = st.queue.pop_front().expect("front exists");
            return Poll::Ready(RawCompletion {
                actual_len: x.moved,
                status: x.status.expect("finished"),
                buffer: x.buf,
            });
        }
        Poll::Pending
    }
    fn clear_halt(&mut self) -> Result<(), BackendError> {
        Ok(())
    }
}

/// A device that answers every control request with `Disconnected` when
/// `gone`, success otherwise.
pub(crate) struct FakeDevice {
    pub gone: Arc<std::sync::atomic::AtomicBool>,
}

struct Ready(Option<ControlResult>);
impl BackendControl for Ready {
    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ControlResult> {
        Poll::Ready(self.0.take().unwrap_or(Err(RawStatus::Cancelled)))
    }
}

impl BackendDevice for FakeDevice {
    fn device_descriptor(&self) -> Vec<u8> {
        Vec::new()
    }
    fn configuration_descriptors(&self) -> Vec<Vec<u8>> {
        Vec::new()
    }
    fn active_configuration(&self) -> Result<u8, BackendError> {
        Ok(1)
    }
    fn set_configuration(&self, _: u8) -> Result<(), BackendError> {
        Ok(())
    }
    fn claim_interface(&self, _: u8, _: bool) -> Result<Box<dyn BackendInterface>, BackendError> {
        Err(BackendError::new(BackendErrorKind::Unsupported, "fake"))
    }
    fn submit_control(&self, _: SetupPacket, _: &[u8], _: Duration) -> Box<dyn BackendControl> {
        let gone = self.gone.load(std::sync::atomic::Ordering::SeqCst);
        Box::new(Ready(Some(if gone {
            Err(RawStatus::Disconnected)
        } else {
            Ok(crate::backend::ControlData::In(vec![0, 0]))
        })))
    }
    fn speed(&self) -> Option<crate::target::Speed> {
        None
    }
    fn reset(&self) -> Result<(), BackendError> {
        Ok(())
    }
}

/// A pipe engine over a fake endpoint.
pub(crate) fn pipe(
    dir: Direction,
    mps: usize,
) -> (
    Arc<super::PipeShared>,
    Fake,
    Arc<std::sync::atomic::AtomicBool>,
) {
    let fake = Fake::new(dir, mps);
    let gone = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let dev = super::DeviceCore::new(Box::new(FakeDevice { gone: gone.clone() }));
    let shared = super::PipeShared::new(
        super::PipeInfo {
            address: fake.address(),
            max_packet_size: mps,
            transfer_type: TransferType::Bulk,
            direction: dir,
        },
        dev,
        Box::new(fake.clone()),
        crate::options::PipePolicy::default(),
    );
    (shared, fake, gone)
}
