//! The README's first command does its job on real devices: the demo picks
//! the system host when the gadgets are attached and every demo passes.

use usbdf::Host;
use usbdf_tests::vm;

#[test]
fn demo_runs_on_the_real_gadgets() {
    vm::require_vm();
    usbdf_demo::run_on(&Host::system()).expect("every demo passes on real gadgets");
}

#[test]
fn demo_chooses_the_real_devices_when_attached() {
    vm::require_vm();
    // `run` prints which host it used; with both gadgets present it must
    // pick the system stack, so running it without forcing the simulator
    // exercises exactly the path a user with hardware takes.
    usbdf_demo::run(false).expect("demo on the system host");
}
