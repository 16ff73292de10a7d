//! Real devices or the simulator: which host the demo runs on, and why.

use std::fmt;

use usbdf::descriptor::class;
use usbdf::{DeviceInfo, Host};
use usbdf_loopback::{LOOPBACK_PRODUCT_ID, SOURCESINK_PRODUCT_ID, VENDOR_ID};

use crate::error::{Result, StepExt};
use crate::peer::Peers;
use crate::simulated::SimBench;

/// The CDC-ACM gadget's product ID (Linux's serial gadget, `0525:a4a7`).
pub const ACM_PRODUCT_ID: u16 = 0xa4a7;
/// The HID gadget's product ID in usbdf's VM (`0525:a4ac`).
pub const HID_PRODUCT_ID: u16 = 0xa4ac;

/// The sample devices the demo recognises by ID, with a name for messages.
pub const KNOWN_GADGETS: [(u16, u16, &str); 4] = [
    (VENDOR_ID, LOOPBACK_PRODUCT_ID, "Loopback"),
    (VENDOR_ID, SOURCESINK_PRODUCT_ID, "SourceSink"),
    (VENDOR_ID, ACM_PRODUCT_ID, "CDC-ACM"),
    (VENDOR_ID, HID_PRODUCT_ID, "HID"),
];

/// Which host to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostMode {
    /// Real devices when a sample device is attached, else the simulator.
    #[default]
    Auto,
    /// The simulator, whatever is attached (`--sim`).
    Simulated,
    /// The system's USB stack, whatever is attached (`--real`).
    System,
}

/// Why the demo runs where it runs; its `Display` is the line the demo prints first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// The system's USB stack: these sample devices were found (empty with `--real`).
    System {
        /// Names of the recognised devices found.
        found: Vec<String>,
    },
    /// The simulator.
    Simulated {
        /// Why: `--sim`, nothing attached, or no USB subsystem.
        reason: String,
    },
}

impl fmt::Display for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Choice::System { found } if found.is_empty() => write!(
                f,
                "Using REAL devices on the system USB stack (--real given; no sample device found)."
            ),
            Choice::System { found } => write!(
                f,
                "Using REAL devices on the system USB stack: found {}.",
                found.join(", ")
            ),
            Choice::Simulated { reason } => write!(
                f,
                "Using the built-in SIMULATED devices ({reason}): Loopback, SourceSink, \
                 CDC-ACM (its far end echoes) and HID."
            ),
        }
    }
}

/// The host the demo runs on, the simulated devices when it is the simulator, and the
/// device sides it can drive.
#[derive(Debug)]
pub struct DemoHost {
    host: Host,
    choice: Choice,
    bench: Option<SimBench>,
}

impl DemoHost {
    /// Choose a host as `mode` says: see [`HostMode`].
    ///
    /// # Errors
    /// With [`HostMode::System`], when the system cannot list its USB devices.
    pub fn choose(mode: HostMode) -> Result<DemoHost> {
        match mode {
            HostMode::Simulated => Ok(DemoHost::simulated("--sim given")),
            HostMode::System => {
                let devices = Host::system()
                    .devices()
                    .step("list the system's USB devices")?;
                Ok(DemoHost::system(recognised(&devices)))
            }
            HostMode::Auto => Ok(match Host::system().devices() {
                Err(_) => DemoHost::simulated("no USB subsystem on this machine"),
                Ok(devices) => match recognised(&devices) {
                    found if found.is_empty() => DemoHost::simulated("no sample device attached"),
                    found => DemoHost::system(found),
                },
            }),
        }
    }

    /// The simulator with the sample devices plugged in.
    pub fn simulated(reason: &str) -> DemoHost {
        let bench = SimBench::new();
        DemoHost {
            host: bench.host(),
            choice: Choice::Simulated {
                reason: reason.to_owned(),
            },
            bench: Some(bench),
        }
    }

    fn system(found: Vec<String>) -> DemoHost {
        DemoHost {
            host: Host::system(),
            choice: Choice::System { found },
            bench: None,
        }
    }

    /// The host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Which host, and why.
    pub fn choice(&self) -> &Choice {
        &self.choice
    }

    /// The device sides the demo can drive: the simulator's, or none on real devices.
    pub fn peers(&self) -> Peers {
        self.bench.as_ref().map(SimBench::peers).unwrap_or_default()
    }
}

/// The sample devices in `devices`, by name: the known gadgets, and any other device with
/// a CDC-ACM interface. HID devices other than the gadget do not count: keyboards and mice
/// belong to the kernel's `usbhid`.
pub fn recognised(devices: &[DeviceInfo]) -> Vec<String> {
    devices
        .iter()
        .filter_map(|d| {
            let id = (d.vendor_id(), d.product_id());
            if let Some((_, _, name)) = KNOWN_GADGETS.iter().find(|(v, p, _)| (*v, *p) == id) {
                return Some(format!("{name} {:04x}:{:04x}", id.0, id.1));
            }
            d.interfaces()
                .iter()
                .any(|&(_, c, s, _)| c == class::CDC && s == usbdf_cdc_acm::SUBCLASS_ACM)
                .then(|| format!("CDC-ACM {:04x}:{:04x}", id.0, id.1))
        })
        .collect()
}
