//! Loopback echo through the public API on the simulator.

use usbdf::sim::{Loopback, SimHost};
use usbdf::{Bulk, DeviceSelector, In, Out, Request, Status, Timeout};

const LB: (u16, u16) = (0x0525, 0xa4a9);

#[test]
fn echo_small() {
    let sim = SimHost::new();
    let _dev = sim.plug(Loopback::default());
    let device = sim.host().open(&DeviceSelector::id(LB.0, LB.1)).unwrap();
    let iface = device.claim_interface(0).unwrap();
    let out = iface.open_pipe::<Bulk, Out>(0x01).unwrap();
    let inp = iface.open_pipe::<Bulk, In>(0x81).unwrap();
    let mut req = Request::with_capacity(64);
    req.memory_mut().set(b"hello").unwrap();
    let c = out.write_sync(req, Timeout::millis(1000)).unwrap();
    assert_eq!(c.status(), Status::Success);
    assert_eq!(c.bytes(), 5);
    let c = inp
        .read_sync(Request::with_capacity(512), 512, Timeout::millis(1000))
        .unwrap();
    assert_eq!(c.status(), Status::Success);
    assert_eq!(c.data(), b"hello");
}
