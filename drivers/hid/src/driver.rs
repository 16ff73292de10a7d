//! The [`Driver`] plugin: binds every HID interface.

use std::sync::Arc;

use usbdf::descriptor::class;
use usbdf::driver::{DeviceMatch, Driver, Probe, ProbeContext};
use usbdf::Timeout;

use crate::device::{HidConfig, HidDevice};

/// The ID table: any interface of class 3 (HID), any subclass and protocol.
pub static ID_TABLE: [DeviceMatch; 1] =
    [DeviceMatch::interface_class(class::HID, 0, 0).any_subclass()];

/// How long `stop` waits for the pending reads.
const STOP_TIMEOUT: Timeout = Timeout::millis(2000);

/// Called with each newly bound device, before `start`.
pub type BoundCallback = Arc<dyn Fn(&HidDevice) + Send + Sync + 'static>;

/// The HID class driver: probe claims the interface and reads and parses
/// the report descriptor; start starts the input reader; stop stops it;
/// removal wakes blocked readers with [`HidError::Disconnected`](crate::HidError::Disconnected).
///
/// The instance is the [`HidDevice`] itself (cheap to clone): take a
/// clone in [`on_bound`](Self::on_bound) to use it.
///
/// KMDF: a function driver whose `EvtDevicePrepareHardware` reads the HID
/// descriptors and whose `EvtDeviceD0Entry` starts the continuous reader.
#[derive(Clone, Default)]
pub struct HidDriver {
    config: HidConfig,
    on_bound: Option<BoundCallback>,
}

impl HidDriver {
    /// A driver opening devices with the default [`HidConfig`].
    pub fn new() -> HidDriver {
        HidDriver::default()
    }

    /// Open devices with `config`.
    pub fn with_config(mut self, config: HidConfig) -> HidDriver {
        self.config = config;
        self
    }

    /// Call `f` with every device bound.
    pub fn on_bound(mut self, f: impl Fn(&HidDevice) + Send + Sync + 'static) -> HidDriver {
        self.on_bound = Some(Arc::new(f));
        self
    }
}

impl std::fmt::Debug for HidDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HidDriver")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Driver for HidDriver {
    type Instance = HidDevice;

    fn name(&self) -> &'static str {
        "usbdf-hid"
    }

    fn id_table(&self) -> &'static [DeviceMatch] {
        &ID_TABLE
    }

    /// Claims the interface and reads and parses its report descriptor.
    /// A malformed one is an error (the typed
    /// [`ParseError`](crate::ParseError) is logged; see
    /// [`HidError::into_usbdf`](crate::HidError::into_usbdf)).
    fn probe(&self, ctx: &ProbeContext<'_>) -> Result<Probe<HidDevice>, usbdf::Error> {
        let mut config = self.config.clone();
        config.claim = ctx.claim_mode();
        let hid = HidDevice::open(ctx.device, ctx.interface.number, config)
            .map_err(crate::HidError::into_usbdf)?;
        if let Some(f) = &self.on_bound {
            f(&hid);
        }
        Ok(Probe::Bound(hid))
    }

    fn start(&self, instance: &mut HidDevice) -> Result<(), usbdf::Error> {
        instance.start().map_err(crate::HidError::into_usbdf)
    }

    fn stop(&self, instance: &mut HidDevice) {
        if let Err(e) = instance.stop(STOP_TIMEOUT) {
            tracing::debug!(error = %e, "HID reader did not stop in time");
        }
    }

    fn removed(&self, instance: HidDevice) {
        instance.mark_removed();
    }
}
