//! The configuration-descriptor parsers on device-supplied bytes: strict and lenient.
//! Neither may panic or hang; on input the strict parser accepts, the lenient one gives
//! the same value; a strictly parsed configuration survives `to_bytes` → `parse`
//! (anomalies aside: counts are corrected on write); a lenient one's interfaces are all
//! findable by number.
#![no_main]

use libfuzzer_sys::fuzz_target;
use usbdf::descriptor::ConfigurationDescriptor;

fn strip(c: &ConfigurationDescriptor) -> ConfigurationDescriptor {
    ConfigurationDescriptor {
        anomalies: Vec::new(),
        ..c.clone()
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = ConfigurationDescriptor::total_length(data);
    let strict = ConfigurationDescriptor::parse(data);
    let lenient = ConfigurationDescriptor::parse_lenient(data);
    if let Ok(config) = &strict {
        assert_eq!(
            lenient.as_ref().ok(),
            Some(config),
            "lenient differs from strict"
        );
        let again = ConfigurationDescriptor::parse(&config.to_bytes()).expect("re-parse");
        assert_eq!(strip(&again), strip(config));
    }
    if let Ok(config) = &lenient {
        for setting in config.settings() {
            assert!(config.interface(setting.number).is_some());
            for ep in &setting.endpoints {
                assert!(config.find_endpoint(ep.address).is_some());
            }
        }
        for iad in &config.associations {
            let _ = config.association_of(iad.first_interface);
        }
        let _ = (config.max_power_ma(), config.max_power_ma_superspeed());
    }
});
