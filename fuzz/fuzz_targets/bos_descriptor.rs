//! The BOS descriptor parser on device-supplied bytes: never a panic; what it accepts
//! survives `to_bytes` → `parse` with the same capabilities.
#![no_main]

use libfuzzer_sys::fuzz_target;
use usbdf::descriptor::BosDescriptor;

fuzz_target!(|data: &[u8]| {
    let _ = BosDescriptor::total_length(data);
    if let Ok(bos) = BosDescriptor::parse(data) {
        let again = BosDescriptor::parse(&bos.to_bytes()).expect("re-parse");
        assert_eq!(again.capabilities, bos.capabilities);
        let _ = (bos.usb2_extension(), bos.superspeed());
    }
});
