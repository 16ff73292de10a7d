//! CDC functional descriptors and the ACM finder on device-supplied bytes: as a run of
//! class-specific descriptors, and as a whole configuration descriptor.
#![no_main]

use libfuzzer_sys::fuzz_target;
use usbdf::descriptor::ConfigurationDescriptor;
use usbdf_cdc_acm::{find_cdc_acm, find_cdc_acm_at, CdcFunctional};

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = CdcFunctional::parse_bytes(data) {
        assert!(!f.union.subordinate_interfaces.is_empty());
    }
    if let Ok(config) = ConfigurationDescriptor::parse_lenient(data) {
        for setting in config.settings() {
            let _ = CdcFunctional::parse(&setting.class_specific);
            let _ = find_cdc_acm_at(&config, setting.number);
        }
        if let Ok(info) = find_cdc_acm(&config) {
            assert_eq!(info.data_interface, info.functional.union.data_interface());
            assert!(config.interface(info.data_interface).is_some());
        }
    }
});
