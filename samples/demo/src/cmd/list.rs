//! `list`: the devices on the host and which driver bound each interface.

use std::fmt::{self, Write as _};

use usbdf::descriptor::class;
use usbdf::driver::{Binding, RegistryEvent};
use usbdf::{DeviceInfo, Host};

use crate::bind::Bound;
use crate::error::{Result, StepExt};

/// One device and its interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRow {
    /// The bus.
    pub bus_id: String,
    /// The address on the bus.
    pub address: u8,
    /// `idVendor`.
    pub vendor_id: u16,
    /// `idProduct`.
    pub product_id: u16,
    /// The product string, if any.
    pub product: Option<String>,
    /// The interfaces of the active configuration, ascending.
    pub interfaces: Vec<InterfaceRow>,
}

/// One interface and the driver bound to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceRow {
    /// `bInterfaceNumber`.
    pub number: u8,
    /// `bInterfaceClass`.
    pub class: u8,
    /// `bInterfaceSubClass`.
    pub subclass: u8,
    /// The driver bound to it (`None`: unbound).
    pub driver: Option<&'static str>,
}

/// What `list` shows: every device with its interfaces, then the failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The host's name (`system` or `simulator`).
    pub host: &'static str,
    /// The devices, by bus and address.
    pub devices: Vec<DeviceRow>,
    /// Failed probes, starts and opens, one line each.
    pub problems: Vec<String>,
}

impl Listing {
    /// Join the devices on `host` with the bindings.
    pub fn new(host: &'static str, devices: &[DeviceInfo], bound: &Bound) -> Listing {
        let bindings = bound.bindings();
        let mut rows: Vec<DeviceRow> = devices.iter().map(|d| row(d, &bindings)).collect();
        rows.sort_by(|a, b| (&a.bus_id, a.address).cmp(&(&b.bus_id, b.address)));
        let mut problems: Vec<String> = bound.problems.iter().map(problem).collect();
        if bound.unsettled > 0 {
            problems.push(format!(
                "{} matching interface(s) neither bound nor failed within {:?}",
                bound.unsettled,
                crate::bind::BIND_TIMEOUT
            ));
        }
        Listing {
            host,
            devices: rows,
            problems,
        }
    }

    /// The (driver, `vid:pid`) of every bound interface, in listing order.
    pub fn bound(&self) -> Vec<(&'static str, String)> {
        self.devices
            .iter()
            .flat_map(|d| {
                d.interfaces.iter().filter_map(move |i| {
                    i.driver
                        .map(|drv| (drv, format!("{:04x}:{:04x}", d.vendor_id, d.product_id)))
                })
            })
            .collect()
    }
}

fn row(d: &DeviceInfo, bindings: &[Binding]) -> DeviceRow {
    let binding_of = |n: u8| {
        bindings
            .iter()
            .find(|b| {
                b.bus_id == d.bus_id() && b.address == d.address() && b.interfaces.contains(&n)
            })
            .map(|b| b.driver)
    };
    let mut interfaces: Vec<InterfaceRow> = d
        .interfaces()
        .iter()
        .map(|&(number, class, subclass, _)| InterfaceRow {
            number,
            class,
            subclass,
            driver: binding_of(number),
        })
        .collect();
    interfaces.sort_by_key(|i| i.number);
    DeviceRow {
        bus_id: d.bus_id().to_owned(),
        address: d.address(),
        vendor_id: d.vendor_id(),
        product_id: d.product_id(),
        product: d.product().map(str::to_owned),
        interfaces,
    }
}

fn problem(e: &RegistryEvent) -> String {
    match e {
        RegistryEvent::ProbeFailed {
            device,
            driver,
            interface,
            error,
        } => format!("{driver}: probe of interface {interface} of device {device} failed: {error}"),
        RegistryEvent::StartFailed {
            device,
            driver,
            error,
            ..
        } => format!("{driver}: start on device {device} failed: {error}"),
        RegistryEvent::OpenFailed { device, error } => {
            format!("device {device} could not be opened: {error}")
        }
        other => format!("{other:?}"),
    }
}

/// A short name for an interface class.
pub fn class_name(class: u8) -> &'static str {
    match class {
        class::AUDIO => "audio",
        class::CDC => "CDC control",
        class::HID => "HID",
        class::MASS_STORAGE => "mass storage",
        class::HUB => "hub",
        class::CDC_DATA => "CDC data",
        class::VIDEO => "video",
        class::VENDOR_SPECIFIC => "vendor",
        _ => "other",
    }
}

impl fmt::Display for Listing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.devices.is_empty() {
            writeln!(f, "No USB devices on the {} host.", self.host)?;
        }
        for d in &self.devices {
            let mut head = format!(
                "{} addr {:>3}  {:04x}:{:04x}",
                d.bus_id, d.address, d.vendor_id, d.product_id
            );
            if let Some(p) = &d.product {
                let _ = write!(head, "  {p}");
            }
            writeln!(f, "{head}")?;
            if d.interfaces.is_empty() {
                writeln!(f, "    (not configured)")?;
            }
            for i in &d.interfaces {
                let class = format!(
                    "{} ({:02x}/{:02x})",
                    class_name(i.class),
                    i.class,
                    i.subclass
                );
                writeln!(
                    f,
                    "    interface {:<2} {class:<20} {}",
                    i.number,
                    i.driver.unwrap_or("-- unbound --")
                )?;
            }
        }
        for p in &self.problems {
            writeln!(f, "problem: {p}")?;
        }
        Ok(())
    }
}

/// `list`: bind the drivers on `host`, print the listing and return it.
///
/// # Errors
/// The host cannot list or watch its devices.
pub fn run(host: &Host) -> Result<Listing> {
    let bound = crate::bind::bind(host)?;
    let devices = host.devices().step("list the USB devices")?;
    let listing = Listing::new(host.name(), &devices, &bound);
    print!("{listing}");
    Ok(listing)
}
