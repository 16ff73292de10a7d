//! The real backend: nusb 0.2 (usbfs on Linux; IOKit, WinUSB elsewhere).

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use nusb::transfer::{
    Bulk, ControlIn, ControlOut, ControlType, In, Interrupt, Out, Recipient as NRecipient,
    TransferError,
};
use nusb::MaybeFuture;

use super::{
    BackendBus, BackendControl, BackendDevice, BackendDeviceInfo, BackendEndpoint, BackendError,
    BackendErrorKind, BackendInterface, BackendWatch, Buffer, BusEvent, ControlData, ControlResult,
    RawCompletion, RawStatus,
};
use crate::control::{ControlDirection, Recipient, RequestKind, SetupPacket};
use crate::descriptor::TransferType;
use crate::target::Speed;

/// The system bus through nusb.
pub(crate) struct NusbBus;

fn err(e: nusb::Error, what: &'static str) -> BackendError {
    let kind = match e.kind() {
        nusb::ErrorKind::Disconnected => BackendErrorKind::Disconnected,
        nusb::ErrorKind::Busy => BackendErrorKind::Busy,
        nusb::ErrorKind::PermissionDenied => BackendErrorKind::PermissionDenied,
        nusb::ErrorKind::NotFound => BackendErrorKind::NotFound,
        nusb::ErrorKind::Unsupported => BackendErrorKind::Unsupported,
        _ => BackendErrorKind::Other,
    };
    BackendError {
        kind,
        message: what,
        os_code: e.os_error(),
    }
}

pub(crate) fn raw_status(e: TransferError) -> RawStatus {
    match e {
        TransferError::Cancelled => RawStatus::Cancelled,
        TransferError::Stall => RawStatus::Stall,
        TransferError::Disconnected => RawStatus::Disconnected,
        TransferError::Fault => RawStatus::Fault,
        TransferError::InvalidArgument => RawStatus::InvalidArgument,
        // ENOMEM (usbfs_memory_mb exhausted) and EOVERFLOW (babble).
        TransferError::Unknown(12) => RawStatus::NoResources,
        TransferError::Unknown(75) => RawStatus::Overflow,
        // EHOSTUNREACH: usbfs refuses a submission to a device that was
        // unplugged before it noticed (seen in the VM's unplug tests).
        // Classified like EPROTO: the engine asks the device.
        TransferError::Unknown(113) => RawStatus::Fault,
        TransferError::Unknown(code) => RawStatus::Os(code),
    }
}

/// The stable key of a nusb device: its `DeviceId` (bus and address on
/// Linux), hashed with a fixed-key hasher so `list` and the hotplug
/// watch's `Disconnected(DeviceId)` agree.
fn key_of(id: nusb::DeviceId) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

fn info_of(d: &nusb::DeviceInfo) -> BackendDeviceInfo {
    BackendDeviceInfo {
        bus_id: d.bus_id().to_string(),
        address: d.device_address(),
        vendor_id: d.vendor_id(),
        product_id: d.product_id(),
        serial: d.serial_number().map(str::to_owned),
        manufacturer: d.manufacturer_string().map(str::to_owned),
        product: d.product_string().map(str::to_owned),
        class: d.class(),
        subclass: d.subclass(),
        protocol: d.protocol(),
        interfaces: d
            .interfaces()
            .map(|i| (i.interface_number(), i.class(), i.subclass(), i.protocol()))
            .collect(),
        key: key_of(d.id()),
    }
}

/// nusb's hotplug stream (a udev netlink socket on Linux: it needs a udev
/// daemon running).
struct NusbWatch(nusb::hotplug::HotplugWatch);

impl BackendWatch for NusbWatch {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<BusEvent>> {
        use futures::Stream;
        Pin::new(&mut self.0).poll_next(cx).map(|e| {
            e.map(|e| match e {
                nusb::hotplug::HotplugEvent::Connected(d) => BusEvent::Arrived(info_of(&d)),
                nusb::hotplug::HotplugEvent::Disconnected(id) => BusEvent::Left(key_of(id)),
            })
        })
    }
}

impl BackendBus for NusbBus {
    fn list(&self) -> Result<Vec<BackendDeviceInfo>, BackendError> {
        let list = nusb::list_devices()
            .wait()
            .map_err(|e| err(e, "cannot list USB devices"))?;
        Ok(list.map(|d| info_of(&d)).collect())
    }

    fn watch(&self) -> Result<Box<dyn BackendWatch>, BackendError> {
        let w = nusb::watch_devices().map_err(|e| err(e, "cannot watch for USB hotplug"))?;
        Ok(Box::new(NusbWatch(w)))
    }

    fn open(&self, info: &BackendDeviceInfo) -> Result<Box<dyn BackendDevice>, BackendError> {
        let found = nusb::list_devices()
            .wait()
            .map_err(|e| err(e, "cannot list USB devices"))?
            .find(|d| d.bus_id() == info.bus_id && d.device_address() == info.address)
            .ok_or(BackendError::new(
                BackendErrorKind::Disconnected,
                "device is no longer present",
            ))?;
        let speed = found.speed();
        let device = found
            .open()
            .wait()
            .map_err(|e| err(e, "cannot open device"))?;
        Ok(Box::new(NusbDevice { device, speed }))
    }
}

struct NusbDevice {
    device: nusb::Device,
    speed: Option<nusb::Speed>,
}

fn control_parts(setup: &SetupPacket) -> Option<(ControlType, NRecipient)> {
    let kind = match setup.kind()? {
        RequestKind::Standard => ControlType::Standard,
        RequestKind::Class => ControlType::Class,
        RequestKind::Vendor => ControlType::Vendor,
    };
    let rcpt = match setup.recipient()? {
        Recipient::Device => NRecipient::Device,
        Recipient::Interface => NRecipient::Interface,
        Recipient::Endpoint => NRecipient::Endpoint,
        Recipient::Other => NRecipient::Other,
    };
    Some((kind, rcpt))
}

type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

enum NusbControl {
    In(BoxFut<Result<Vec<u8>, TransferError>>),
    Out(BoxFut<Result<(), TransferError>>, usize),
    Failed(Option<RawStatus>),
}

impl BackendControl for NusbControl {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ControlResult> {
        match self {
            NusbControl::In(f) => f
                .as_mut()
                .poll(cx)
                .map(|r| r.map(ControlData::In).map_err(raw_status)),
            NusbControl::Out(f, n) => {
                let n = *n;
                f.as_mut()
                    .poll(cx)
                    .map(|r| r.map(|()| ControlData::Out(n)).map_err(raw_status))
            }
            NusbControl::Failed(s) => {
                Poll::Ready(Err(s.take().unwrap_or(RawStatus::InvalidArgument)))
            }
        }
    }
}

impl BackendDevice for NusbDevice {
    fn device_descriptor(&self) -> Vec<u8> {
        self.device.device_descriptor().as_bytes().to_vec()
    }

    fn configuration_descriptors(&self) -> Vec<Vec<u8>> {
        self.device
            .configurations()
            .map(|c| c.as_bytes().to_vec())
            .collect()
    }

    fn active_configuration(&self) -> Result<u8, BackendError> {
        match self.device.active_configuration() {
            Ok(c) => Ok(c.configuration_value()),
            Err(_) => Ok(0),
        }
    }

    fn set_configuration(&self, value: u8) -> Result<(), BackendError> {
        self.device
            .set_configuration(value)
            .wait()
            .map_err(|e| err(e, "SET_CONFIGURATION failed"))
    }

    fn claim_interface(
        &self,
        number: u8,
        detach: bool,
    ) -> Result<Box<dyn BackendInterface>, BackendError> {
        let r = if detach {
            self.device.detach_and_claim_interface(number).wait()
        } else {
            self.device.claim_interface(number).wait()
        };
        let iface = r.map_err(|e| err(e, "cannot claim interface"))?;
        Ok(Box::new(NusbInterface { iface }))
    }

    fn submit_control(
        &self,
        setup: SetupPacket,
        data: &[u8],
        timeout: Duration,
    ) -> Box<dyn BackendControl> {
        let Some((control_type, recipient)) = control_parts(&setup) else {
            return Box::new(NusbControl::Failed(Some(RawStatus::InvalidArgument)));
        };
        match setup.direction() {
            ControlDirection::In => {
                let f = self
                    .device
                    .control_in(
                        ControlIn {
                            control_type,
                            recipient,
                            request: setup.request,
                            value: setup.value,
                            index: setup.index,
                            length: setup.length,
                        },
                        timeout,
                    )
                    .into_future();
                Box::new(NusbControl::In(Box::pin(f)))
            }
            ControlDirection::Out => {
                let f = self
                    .device
                    .control_out(
                        ControlOut {
                            control_type,
                            recipient,
                            request: setup.request,
                            value: setup.value,
                            index: setup.index,
                            data,
                        },
                        timeout,
                    )
                    .into_future();
                Box::new(NusbControl::Out(Box::pin(f), data.len()))
            }
        }
    }

    fn speed(&self) -> Option<Speed> {
        self.speed.map(|s| match s {
            nusb::Speed::Low => Speed::Low,
            nusb::Speed::Full => Speed::Full,
            nusb::Speed::High => Speed::High,
            nusb::Speed::Super => Speed::Super,
            _ => Speed::SuperPlus,
        })
    }

    fn reset(&self) -> Result<(), BackendError> {
        self.device
            .reset()
            .wait()
            .map_err(|e| err(e, "port reset failed"))
    }
}

struct NusbInterface {
    iface: nusb::Interface,
}

impl BackendInterface for NusbInterface {
    fn set_alt_setting(&self, alt: u8) -> Result<(), BackendError> {
        self.iface
            .set_alt_setting(alt)
            .wait()
            .map_err(|e| err(e, "SET_INTERFACE failed"))
    }

    fn alt_setting(&self) -> u8 {
        self.iface.get_alt_setting()
    }

    fn open_endpoint(
        &self,
        address: u8,
        transfer_type: TransferType,
    ) -> Result<Box<dyn BackendEndpoint>, BackendError> {
        let e = |e| err(e, "cannot open endpoint");
        let ep: Box<dyn BackendEndpoint> = match (transfer_type, address & 0x80 != 0) {
            (TransferType::Bulk, true) => {
                Box::new(Ep(self.iface.endpoint::<Bulk, In>(address).map_err(e)?))
            }
            (TransferType::Bulk, false) => {
                Box::new(Ep(self.iface.endpoint::<Bulk, Out>(address).map_err(e)?))
            }
            (TransferType::Interrupt, true) => Box::new(Ep(self
                .iface
                .endpoint::<Interrupt, In>(address)
                .map_err(e)?)),
            (TransferType::Interrupt, false) => Box::new(Ep(self
                .iface
                .endpoint::<Interrupt, Out>(address)
                .map_err(e)?)),
            _ => {
                return Err(BackendError::new(
                    BackendErrorKind::Unsupported,
                    "only bulk and interrupt pipes are supported",
                ))
            }
        };
        Ok(ep)
    }
}

/// Any nusb bulk/interrupt endpoint.
struct Ep<T: nusb::transfer::BulkOrInterrupt, D: nusb::transfer::EndpointDirection>(
    nusb::Endpoint<T, D>,
);

impl<T, D> BackendEndpoint for Ep<T, D>
where
    T: nusb::transfer::BulkOrInterrupt,
    D: nusb::transfer::EndpointDirection,
{
    fn address(&self) -> u8 {
        self.0.endpoint_address()
    }
    fn max_packet_size(&self) -> usize {
        self.0.max_packet_size()
    }
    fn allocate(&self, len: usize) -> Buffer {
        self.0.allocate(len)
    }
    fn submit(&mut self, buf: Buffer) {
        self.0.submit(buf)
    }
    fn pending(&self) -> usize {
        self.0.pending()
    }
    fn cancel_all(&mut self) {
        self.0.cancel_all()
    }
    fn poll_next_complete(&mut self, cx: &mut Context<'_>) -> Poll<RawCompletion> {
        if self.0.pending() == 0 {
            return Poll::Pending;
        }
        self.0.poll_next_complete(cx).map(|c| RawCompletion {
            actual_len: c.actual_len,
            status: c.status.map_err(raw_status),
            buffer: c.buffer,
        })
    }
    fn clear_halt(&mut self) -> Result<(), BackendError> {
        self.0
            .clear_halt()
            .wait()
            .map_err(|e| err(e, "CLEAR_FEATURE(ENDPOINT_HALT) failed"))
    }
}

/// Keeps `Arc` in use for the device handle type (nusb's handles are
/// reference-counted internally).
const _: Option<Arc<()>> = None;
