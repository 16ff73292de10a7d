//! The configfs steps that turn the declared [`Gadget`]s into live gadgets.
//!
//! The steps are data ([`Step`]) so the same list is executed by the guest agent, executed
//! by `cargo xtask gadgets up` on a host, and printed as shell by `cargo xtask gadgets --print`.

use std::fmt;
use std::fs;
use std::io;
use std::path::PathBuf;

use crate::layout::{Gadget, CONFIGFS_GADGETS};

/// One configfs operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create a directory (configfs creates its attribute files).
    Mkdir(PathBuf),
    /// Write an attribute.
    Write(PathBuf, Vec<u8>),
    /// Link a function into a configuration: `Symlink { target, link }`.
    Symlink {
        /// The function directory.
        target: PathBuf,
        /// The link inside the configuration directory.
        link: PathBuf,
    },
    /// Remove a link.
    Unlink(PathBuf),
    /// Remove a directory.
    Rmdir(PathBuf),
}

impl Step {
    /// Perform the step.
    pub fn apply(&self) -> io::Result<()> {
        let context = |e: io::Error, what: &str, path: &PathBuf| {
            io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
        };
        match self {
            Step::Mkdir(path) => fs::create_dir(path).map_err(|e| context(e, "mkdir", path)),
            Step::Write(path, data) => fs::write(path, data).map_err(|e| context(e, "write", path)),
            Step::Symlink { target, link } => {
                std::os::unix::fs::symlink(target, link).map_err(|e| context(e, "symlink", link))
            }
            Step::Unlink(path) => fs::remove_file(path).map_err(|e| context(e, "unlink", path)),
            Step::Rmdir(path) => fs::remove_dir(path).map_err(|e| context(e, "rmdir", path)),
        }
    }
}

impl fmt::Display for Step {
    /// The step as a POSIX shell command.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Mkdir(path) => write!(f, "mkdir {}", path.display()),
            Step::Write(path, data) if is_text(data) => {
                write!(
                    f,
                    "echo '{}' > {}",
                    String::from_utf8_lossy(data),
                    path.display()
                )
            }
            Step::Write(path, data) => {
                f.write_str("printf '")?;
                for byte in data {
                    write!(f, "\\{byte:03o}")?;
                }
                write!(f, "' > {}", path.display())
            }
            Step::Symlink { target, link } => {
                write!(f, "ln -s {} {}", target.display(), link.display())
            }
            Step::Unlink(path) => write!(f, "rm {}", path.display()),
            Step::Rmdir(path) => write!(f, "rmdir {}", path.display()),
        }
    }
}

fn is_text(data: &[u8]) -> bool {
    data.iter().all(|b| b.is_ascii_graphic() || *b == b' ')
}

fn root(gadget: &Gadget) -> PathBuf {
    PathBuf::from(CONFIGFS_GADGETS).join(gadget.name)
}

/// The steps that create `gadget` (not yet bound to its UDC).
pub fn create(gadget: &Gadget) -> Vec<Step> {
    let root = root(gadget);
    let hex = |v: u16| format!("0x{v:04x}").into_bytes();
    let mut steps = vec![
        Step::Mkdir(root.clone()),
        Step::Write(root.join("idVendor"), hex(gadget.vendor_id)),
        Step::Write(root.join("idProduct"), hex(gadget.product_id)),
        Step::Write(root.join("bcdDevice"), hex(0x0100)),
        Step::Write(root.join("bcdUSB"), hex(0x0200)),
        Step::Write(
            root.join("bDeviceClass"),
            hex(gadget.device_class[0].into()),
        ),
        Step::Write(
            root.join("bDeviceSubClass"),
            hex(gadget.device_class[1].into()),
        ),
        Step::Write(
            root.join("bDeviceProtocol"),
            hex(gadget.device_class[2].into()),
        ),
    ];
    let strings = root.join("strings/0x409");
    steps.push(Step::Mkdir(strings.clone()));
    for (file, value) in [
        ("manufacturer", gadget.manufacturer),
        ("product", gadget.product),
        ("serialnumber", gadget.serial),
    ] {
        steps.push(Step::Write(strings.join(file), value.as_bytes().to_vec()));
    }
    // Functions are created in declaration order, over all gadgets: u_serial and f_hid
    // number their gadget-side nodes (/dev/ttyGS<n>, /dev/hidg<n>) in that order.
    for function in gadget.functions() {
        let dir = root.join("functions").join(function.instance());
        steps.push(Step::Mkdir(dir.clone()));
        for (file, value) in function.attributes() {
            steps.push(Step::Write(dir.join(file), value));
        }
    }
    let config = root.join("configs/c.1");
    steps.push(Step::Mkdir(config.clone()));
    steps.push(Step::Write(config.join("MaxPower"), b"120".to_vec()));
    steps.push(Step::Mkdir(config.join("strings/0x409")));
    steps.push(Step::Write(
        config.join("strings/0x409/configuration"),
        gadget.product.as_bytes().to_vec(),
    ));
    // Linked in order: the configuration's interfaces are numbered in link order.
    for function in gadget.functions() {
        steps.push(Step::Symlink {
            target: root.join("functions").join(function.instance()),
            link: config.join(function.instance()),
        });
    }
    steps
}

/// Bind `gadget` to its UDC: the host side sees a device arrive.
pub fn bind(gadget: &Gadget) -> Step {
    Step::Write(root(gadget).join("UDC"), gadget.udc.as_bytes().to_vec())
}

/// Unbind `gadget` from its UDC: the host side sees a surprise removal.
pub fn unbind(gadget: &Gadget) -> Step {
    Step::Write(root(gadget).join("UDC"), b"\n".to_vec())
}

/// The steps that remove a created (and unbound) `gadget`, the reverse of [`create`].
pub fn remove(gadget: &Gadget) -> Vec<Step> {
    let root = root(gadget);
    let config = root.join("configs/c.1");
    let mut steps: Vec<Step> = gadget
        .functions()
        .map(|f| Step::Unlink(config.join(f.instance())))
        .collect();
    steps.push(Step::Rmdir(config.join("strings/0x409")));
    steps.push(Step::Rmdir(config));
    for function in gadget.functions() {
        steps.push(Step::Rmdir(
            root.join("functions").join(function.instance()),
        ));
    }
    steps.push(Step::Rmdir(root.join("strings/0x409")));
    steps.push(Step::Rmdir(root));
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{Function, COMPOSITE, GADGETS, HID, LOOPBACK, UDC_COUNT};

    #[test]
    fn every_gadget_has_its_own_udc_and_ids() {
        for (i, a) in GADGETS.iter().enumerate() {
            for b in &GADGETS[i + 1..] {
                assert_ne!(a.udc, b.udc);
                assert_ne!((a.vendor_id, a.product_id), (b.vendor_id, b.product_id));
                assert_ne!(a.serial, b.serial);
            }
        }
    }

    #[test]
    fn one_udc_per_gadget_and_function_instances_are_unique() {
        assert_eq!(GADGETS.len(), UDC_COUNT as usize);
        let dummy = crate::layout::BOOT_MODULES
            .iter()
            .find(|m| m.file == "dummy_hcd")
            .unwrap();
        assert_eq!(dummy.params, format!("num={UDC_COUNT}"));
        for (i, g) in GADGETS.iter().enumerate() {
            assert_eq!(g.udc, format!("dummy_udc.{i}"));
        }
        // u_serial and f_hid instance names must be unique over all gadgets.
        let mut names: Vec<String> = GADGETS
            .iter()
            .flat_map(|g| g.functions())
            .map(Function::instance)
            .collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate function instance");
    }

    #[test]
    fn composite_links_acm_before_hid() {
        let links: Vec<String> = create(&COMPOSITE)
            .into_iter()
            .filter_map(|s| match s {
                Step::Symlink { link, .. } => Some(link.display().to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(
            links,
            [
                "/sys/kernel/config/usb_gadget/usbdf-composite/configs/c.1/acm.GS1",
                "/sys/kernel/config/usb_gadget/usbdf-composite/configs/c.1/hid.usb1"
            ]
        );
        let removal = remove(&COMPOSITE);
        assert!(matches!(&removal[0], Step::Unlink(p) if p.ends_with("acm.GS1")));
        assert!(matches!(removal.last(), Some(Step::Rmdir(p)) if p.ends_with("usbdf-composite")));
    }

    #[test]
    fn steps_print_as_shell() {
        let steps = create(&LOOPBACK);
        assert_eq!(
            steps[1].to_string(),
            "echo '0x0525' > /sys/kernel/config/usb_gadget/usbdf-lb/idVendor"
        );
        let desc = create(&HID)
            .into_iter()
            .find(|s| matches!(s, Step::Write(p, _) if p.ends_with("report_desc")));
        assert!(desc
            .unwrap()
            .to_string()
            .starts_with("printf '\\006\\000\\377"));
    }
}
