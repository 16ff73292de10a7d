//! Typed bulk and interrupt pipes.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::backend::BackendEndpoint;
use crate::descriptor::{Direction, EndpointDescriptor, TransferType};
use crate::engine::{
    CancelHandle, CompletionRoutine, PipeInfo, PipeShared, Sent, StopAction, TargetState,
};
use crate::error::{Error, SendError};
use crate::memory::Memory;
use crate::options::{PipePolicy, SendOptions, Timeout};
use crate::pool::RequestPool;
use crate::request::Request;
use crate::status::Status;
use crate::target::interface::{pipe_bit, Interface, InterfaceShared};

mod sealed {
    pub trait Sealed {}
}

/// A pipe's transfer type, as a type: [`Bulk`] or [`Interrupt`].
pub trait PipeType: sealed::Sealed + Send + Sync + 'static {
    /// The descriptor's transfer type.
    const TYPE: TransferType;
}

/// A pipe's direction, as a type: [`In`] or [`Out`].
pub trait PipeDirection: sealed::Sealed + Send + Sync + 'static {
    /// The direction.
    const DIRECTION: Direction;
}

/// Bulk transfers.
#[derive(Debug)]
pub enum Bulk {}
/// Interrupt transfers.
#[derive(Debug)]
pub enum Interrupt {}
/// Device to host.
#[derive(Debug)]
pub enum In {}
/// Host to device.
#[derive(Debug)]
pub enum Out {}

impl sealed::Sealed for Bulk {}
impl sealed::Sealed for Interrupt {}
impl sealed::Sealed for In {}
impl sealed::Sealed for Out {}
impl PipeType for Bulk {
    const TYPE: TransferType = TransferType::Bulk;
}
impl PipeType for Interrupt {
    const TYPE: TransferType = TransferType::Interrupt;
}
impl PipeDirection for In {
    const DIRECTION: Direction = Direction::In;
}
impl PipeDirection for Out {
    const DIRECTION: Direction = Direction::Out;
}

/// What a pipe is, from its endpoint descriptor.
///
/// KMDF: `WDF_USB_PIPE_INFORMATION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PipeInformation {
    /// `bEndpointAddress`.
    pub address: u8,
    /// Max packet size in bytes.
    pub max_packet_size: usize,
    /// Bulk or interrupt.
    pub transfer_type: TransferType,
    /// `bInterval`.
    pub interval: u8,
}

/// A typed pipe: `Pipe<Bulk, In>`, `Pipe<Interrupt, Out>`, ….
///
/// Type and direction were checked against the endpoint descriptor when the
/// pipe was opened, so reads exist only on IN pipes and writes only on OUT
/// pipes. Cloning shares the pipe. The endpoint is released when the last
/// clone is dropped (pending requests are cancelled then).
///
/// KMDF: `WDFUSBPIPE` (and its `WDFIOTARGET`).
pub struct Pipe<T: PipeType, D: PipeDirection> {
    pub(crate) shared: Arc<PipeShared>,
    info: PipeInformation,
    _claim: Arc<PipeClaim>,
    _t: PhantomData<fn() -> (T, D)>,
}

/// Keeps the interface's open-pipe bit set while any clone lives; when
/// the last one goes, cancels what is in flight (the engine keeps itself
/// alive until those completions are delivered).
struct PipeClaim {
    iface: Arc<InterfaceShared>,
    bit: u32,
    pipe: Arc<PipeShared>,
}

impl Drop for PipeClaim {
    fn drop(&mut self) {
        self.pipe.release();
        let mut open = self
            .iface
            .open_pipes
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *open &= !self.bit;
    }
}

impl<T: PipeType, D: PipeDirection> Clone for Pipe<T, D> {
    fn clone(&self) -> Self {
        Pipe {
            shared: self.shared.clone(),
            info: self.info,
            _claim: self._claim.clone(),
            _t: PhantomData,
        }
    }
}

impl<T: PipeType, D: PipeDirection> Pipe<T, D> {
    pub(crate) fn new(
        iface: &Interface,
        ep: EndpointDescriptor,
        backend: Box<dyn BackendEndpoint>,
        policy: PipePolicy,
    ) -> Self {
        let mps = backend.max_packet_size();
        let info = PipeInformation {
            address: ep.address,
            max_packet_size: mps,
            transfer_type: T::TYPE,
            interval: ep.interval,
        };
        let shared = PipeShared::new(
            PipeInfo {
                address: ep.address,
                max_packet_size: mps,
                transfer_type: T::TYPE,
                direction: D::DIRECTION,
            },
            iface.device.core.clone(),
            backend,
            policy,
        );
        Pipe {
            _claim: Arc::new(PipeClaim {
                iface: iface.shared.clone(),
                bit: pipe_bit(ep.address),
                pipe: shared.clone(),
            }),
            shared,
            info,
            _t: PhantomData,
        }
    }

    /// The pipe's address, max packet size, type and interval.
    ///
    /// KMDF: `WdfUsbTargetPipeGetInformation`.
    pub fn info(&self) -> PipeInformation {
        self.info
    }

    /// A buffer suited to this pipe: zero-copy on Linux.
    pub fn allocate(&self, capacity: usize) -> Memory {
        Memory::from_buffer(self.shared.allocate(capacity))
    }

    /// A pool of `count` requests with buffers from [`allocate`](Self::allocate).
    pub fn request_pool(&self, count: usize, buffer_len: usize) -> RequestPool {
        RequestPool::from_fn(count, buffer_len, |n| self.allocate(n))
    }

    /// Cancel every request sent on the pipe and wait for all of them to
    /// complete, for at most `timeout`.
    ///
    /// KMDF: `WdfUsbTargetPipeAbortSynchronously`.
    ///
    /// # Errors
    /// [`Error::TimedOut`] if completions are still outstanding at the
    /// deadline (they will still arrive).
    pub fn abort(&self, timeout: Timeout) -> Result<(), Error> {
        self.shared.abort(timeout)
    }

    /// Clear a halt (stall) on the endpoint and resume the pipe. Nothing
    /// may be in flight: [`abort`](Self::abort) first.
    ///
    /// KMDF: `WdfUsbTargetPipeResetSynchronously`.
    ///
    /// # Errors
    /// [`Error::RequestsPending`], [`Error::Disconnected`], the OS error.
    pub fn reset(&self) -> Result<(), Error> {
        self.shared.reset()
    }

    /// The status that halted the pipe, if it is halted.
    pub fn halted(&self) -> Option<Status> {
        self.shared.halted()
    }

    /// Stop the pipe's I/O target: later sends fail with `TargetStopped`
    /// (unless sent with `ignore_target_state`); `action` says what happens
    /// to requests already sent.
    ///
    /// KMDF: `WdfIoTargetStop`.
    ///
    /// # Errors
    /// [`Error::TimedOut`] when waiting for sent I/O takes too long.
    pub fn stop(&self, action: StopAction, timeout: Timeout) -> Result<(), Error> {
        self.shared.stop(action, timeout)
    }

    /// Start the pipe's I/O target.
    ///
    /// KMDF: `WdfIoTargetStart`.
    ///
    /// # Errors
    /// [`Error::Disconnected`].
    pub fn start(&self) -> Result<(), Error> {
        self.shared.start()
    }

    /// The I/O target state.
    ///
    /// KMDF: `WdfIoTargetGetState`.
    pub fn state(&self) -> TargetState {
        self.shared.target_state()
    }

    /// Change the pipe's policy (short packets, ZLPs, size check, limits).
    ///
    /// KMDF: `WdfUsbTargetPipeSetNoMaximumPacketSizeCheck` and friends.
    pub fn set_policy(&self, policy: PipePolicy) {
        self.shared.set_policy(policy);
    }

    /// The pipe's policy.
    pub fn policy(&self) -> PipePolicy {
        self.shared.policy()
    }

    /// Requests sent and not yet completed.
    pub fn in_flight(&self) -> usize {
        self.shared.active()
    }
}

impl<T: PipeType> Pipe<T, In> {
    /// Send a read of `len` bytes; await the returned [`Sent`] or
    /// [`wait`](Sent::wait) on it.
    ///
    /// KMDF: `WdfUsbTargetPipeFormatRequestForRead` + `WdfRequestSend`.
    ///
    /// # Errors
    /// The request comes back in a [`SendError`] (zero length, not a
    /// multiple of the max packet size, too large for the buffer, queue
    /// full, target stopped, halted, device gone).
    pub fn read(
        &self,
        request: Request,
        len: usize,
        opts: &SendOptions,
    ) -> Result<Sent, SendError> {
        let (key, gen) = self
            .shared
            .send(request, len, opts, crate::engine::SendTo::Future)?;
        Ok(Sent::new(self.shared.clone(), key, gen))
    }

    /// Send a read and have `routine` called with its completion.
    ///
    /// # Errors
    /// As [`read`](Self::read).
    pub fn read_with(
        &self,
        request: Request,
        len: usize,
        opts: &SendOptions,
        routine: &CompletionRoutine,
    ) -> Result<CancelHandle, SendError> {
        let (key, gen) = self.shared.send(
            request,
            len,
            opts,
            crate::engine::SendTo::Routine(routine.clone()),
        )?;
        Ok(CancelHandle::new(self.shared.clone(), key, gen))
    }

    /// Read `len` bytes and wait, for at most `timeout`.
    ///
    /// KMDF: `WdfUsbTargetPipeReadSynchronously`.
    ///
    /// # Errors
    /// A [`SendError`] when the read could not be sent, or
    /// `SendErrorKind::ZeroTimeout` for a zero timeout. A read that was
    /// sent always yields its [`Completion`](crate::Completion).
    pub fn read_sync(
        &self,
        request: Request,
        len: usize,
        timeout: Timeout,
    ) -> Result<crate::Completion, SendError> {
        if timeout.is_zero() {
            return Err(SendError::new(crate::SendErrorKind::ZeroTimeout, request));
        }
        Ok(self.read(request, len, &SendOptions::new())?.wait(timeout))
    }
}

impl<T: PipeType> Pipe<T, Out> {
    /// Send the request's buffer contents (a ZLP follows when the length is
    /// a whole number of packets and the policy says [`Zlp::Auto`](crate::Zlp::Auto)).
    ///
    /// KMDF: `WdfUsbTargetPipeFormatRequestForWrite` + `WdfRequestSend`.
    ///
    /// # Errors
    /// The request comes back in a [`SendError`].
    pub fn write(&self, request: Request, opts: &SendOptions) -> Result<Sent, SendError> {
        let (key, gen) = self
            .shared
            .send(request, 0, opts, crate::engine::SendTo::Future)?;
        Ok(Sent::new(self.shared.clone(), key, gen))
    }

    /// Send a write and have `routine` called with its completion.
    ///
    /// # Errors
    /// As [`write`](Self::write).
    pub fn write_with(
        &self,
        request: Request,
        opts: &SendOptions,
        routine: &CompletionRoutine,
    ) -> Result<CancelHandle, SendError> {
        let (key, gen) = self.shared.send(
            request,
            0,
            opts,
            crate::engine::SendTo::Routine(routine.clone()),
        )?;
        Ok(CancelHandle::new(self.shared.clone(), key, gen))
    }

    /// Write and wait, for at most `timeout`.
    ///
    /// KMDF: `WdfUsbTargetPipeWriteSynchronously`.
    ///
    /// # Errors
    /// As [`Pipe::read_sync`].
    pub fn write_sync(
        &self,
        request: Request,
        timeout: Timeout,
    ) -> Result<crate::Completion, SendError> {
        if timeout.is_zero() {
            return Err(SendError::new(crate::SendErrorKind::ZeroTimeout, request));
        }
        Ok(self.write(request, &SendOptions::new())?.wait(timeout))
    }
}

impl<T: PipeType, D: PipeDirection> std::fmt::Debug for Pipe<T, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipe")
            .field("address", &format_args!("{:#04x}", self.info.address))
            .field("type", &T::TYPE)
            .field("max_packet_size", &self.info.max_packet_size)
            .finish()
    }
}
