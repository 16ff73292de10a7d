//! Bad input at the target level: each is a typed error and loses nothing.

use proptest::prelude::*;
use usbdf::descriptor::{DescriptorError, TransferType};
use usbdf::sim::{
    ControlReply, DeviceModel, InReply, Loopback, ModelDescriptors, Notifier, OutReply, SimHost,
};
use usbdf::{
    Bulk, DeviceSelector, Error, In, Interrupt, Request, SendErrorKind, SendOptions, SetupPacket,
    Speed, Timeout,
};

mod common;
use common::open_loopback;

/// Loopback with its configuration descriptor replaced by `config`.
struct Garbled {
    inner: Loopback,
    config: Vec<u8>,
}

impl DeviceModel for Garbled {
    fn descriptors(&self, speed: Speed) -> ModelDescriptors {
        let mut d = self.inner.descriptors(speed);
        d.configurations = vec![self.config.clone()];
        d
    }
    fn attach(&mut self, n: Notifier) {
        self.inner.attach(n)
    }
    fn control(&mut self, s: &SetupPacket, data: &[u8]) -> ControlReply {
        self.inner.control(s, data)
    }
    fn out_packet(&mut self, ep: u8, data: &[u8]) -> OutReply {
        self.inner.out_packet(ep, data)
    }
    fn in_packet(&mut self, ep: u8, buf: &mut [u8]) -> InReply {
        self.inner.in_packet(ep, buf)
    }
}

fn open_garbled(config: Vec<u8>) -> Result<usbdf::Device, Error> {
    let sim = SimHost::new();
    let _dev = sim.plug(Garbled {
        inner: Loopback::default(),
        config,
    });
    sim.host().open(&DeviceSelector::id(0x0525, 0xa4a9))
}

fn good_config() -> Vec<u8> {
    Loopback::default().descriptors(Speed::High).configurations[0].clone()
}

#[test]
fn malformed_configuration_headers_are_typed_errors() {
    let mut short_total = good_config();
    short_total[2] = 4;
    short_total[3] = 0;
    assert!(matches!(
        open_garbled(short_total),
        Err(Error::Descriptor(DescriptorError::BadTotalLength { .. }))
    ));
    assert!(matches!(
        open_garbled(good_config()[..5].to_vec()),
        Err(Error::Descriptor(DescriptorError::Truncated { .. }))
    ));
    let mut wrong_type = good_config();
    wrong_type[1] = 7;
    assert!(matches!(
        open_garbled(wrong_type),
        Err(Error::Descriptor(DescriptorError::WrongType { .. }))
    ));
}

#[test]
fn damaged_body_is_salvaged_with_anomalies() {
    // bLength 0 on the second endpoint: what came before is kept, like Linux.
    let mut c = good_config();
    let n = c.len();
    c[n - 7] = 0;
    let d = open_garbled(c).expect("salvaged");
    let cfg = &d.configurations()[0];
    assert!(!cfg.anomalies.is_empty(), "the damage is recorded");
    assert!(cfg.setting(0, 0).is_some());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Whatever the device says, opening it never panics.
    #[test]
    fn random_configuration_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = open_garbled(bytes);
    }
}

#[test]
fn pipe_open_checks_type_direction_and_existence() {
    let sim = SimHost::new();
    let _dev = sim.plug(Loopback::default());
    let d = sim
        .host()
        .open(&DeviceSelector::id(0x0525, 0xa4a9))
        .unwrap();
    let iface = d.claim_interface(0).unwrap();
    assert!(matches!(
        iface.open_pipe::<Bulk, In>(0x01),
        Err(Error::WrongDirection { address: 0x01, .. })
    ));
    assert!(matches!(
        iface.open_pipe::<Interrupt, In>(0x81),
        Err(Error::WrongPipeType {
            address: 0x81,
            expected: TransferType::Interrupt,
            found: TransferType::Bulk
        })
    ));
    assert!(matches!(
        iface.open_pipe::<Bulk, In>(0x85),
        Err(Error::NoSuchEndpoint(0x85))
    ));
    let p = iface.open_pipe::<Bulk, In>(0x81).unwrap();
    assert!(matches!(
        iface.open_pipe::<Bulk, In>(0x81),
        Err(Error::PipeAlreadyOpen(0x81))
    ));
    assert!(matches!(iface.select_setting(0), Err(Error::PipesOpen(0))));
    drop(p);
    iface.select_setting(0).unwrap();
    iface.open_pipe::<Bulk, In>(0x81).unwrap();
    assert!(matches!(
        iface.select_setting(3),
        Err(Error::NoSuchAltSetting {
            interface: 0,
            alt: 3
        })
    ));
    assert!(matches!(
        d.claim_interface(7),
        Err(Error::NoSuchInterface(7))
    ));
    assert!(matches!(
        d.claim_interface(0),
        Err(Error::Busy { interface: 0, .. })
    ));
    assert!(matches!(
        d.select_configuration(1),
        Err(Error::InterfacesClaimed)
    ));
    assert!(matches!(
        d.select_configuration(9),
        Err(Error::NoSuchConfiguration(9))
    ));
}

#[test]
fn zero_timeouts_and_bad_lengths_return_the_request() {
    let sim = SimHost::new();
    let _dev = sim.plug(Loopback::default());
    let (d, out, inp) = open_loopback(&sim);
    let mut r = Request::with_capacity(512);
    r.set_tag(5);
    let e = inp.read_sync(r, 512, Timeout::millis(0)).unwrap_err();
    assert_eq!(e.kind(), SendErrorKind::ZeroTimeout);
    let e = inp
        .read(e.into_request(), 100, &SendOptions::new())
        .unwrap_err();
    assert_eq!(
        e.kind(),
        SendErrorKind::NotMultipleOfMaxPacket {
            len: 100,
            max_packet_size: 512
        }
    );
    let e = inp
        .read(e.into_request(), 0, &SendOptions::new())
        .unwrap_err();
    assert_eq!(e.kind(), SendErrorKind::ZeroLengthIn);
    let e = inp
        .read(e.into_request(), 1024, &SendOptions::new())
        .unwrap_err();
    assert_eq!(
        e.kind(),
        SendErrorKind::BufferTooSmall {
            len: 1024,
            capacity: 512
        }
    );
    let r = e.into_request();
    assert_eq!(r.tag(), 5, "the same request came back every time");
    let mut big = Request::with_capacity(8 * 1024 * 1024);
    big.memory_mut().fill_with(8 * 1024 * 1024, |_| 0).unwrap();
    let e = out.write(big, &SendOptions::new()).unwrap_err();
    assert!(matches!(e.kind(), SendErrorKind::TooLarge { .. }));
    assert!(matches!(
        d.control_pipe().read(
            SetupPacket::get_status(usbdf::control::Recipient::Device, 0),
            Timeout::millis(0)
        ),
        Err(Error::ZeroTimeout)
    ));
}

#[test]
fn every_call_after_unplug_fails_fast() {
    let sim = SimHost::new();
    let dev = sim.plug(Loopback::default());
    let d = sim
        .host()
        .open(&DeviceSelector::id(0x0525, 0xa4a9))
        .unwrap();
    let iface = d.claim_interface(0).unwrap();
    let inp = iface.open_pipe::<Bulk, In>(0x81).unwrap();
    dev.unplug();
    assert!(!d.is_connected());
    let e = inp
        .read(Request::with_capacity(512), 512, &SendOptions::new())
        .unwrap_err();
    assert_eq!(e.kind(), SendErrorKind::Disconnected);
    assert!(matches!(d.claim_interface(0), Err(Error::Disconnected)));
    assert!(matches!(
        d.control_pipe().read(
            SetupPacket::get_status(usbdf::control::Recipient::Device, 0),
            Timeout::millis(500)
        ),
        Err(Error::Disconnected)
    ));
    assert!(matches!(inp.reset(), Err(Error::Disconnected)));
    assert!(matches!(
        iface.select_setting(0),
        Err(Error::Disconnected) | Err(Error::PipesOpen(0))
    ));
    assert!(matches!(inp.start(), Err(Error::Disconnected)));
}
