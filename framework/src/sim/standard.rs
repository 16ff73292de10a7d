//! Chapter 9 standard requests the simulated controller answers itself,
//! and the synchronous device operations (configuration, alternate
//! setting, halts) shared by control transfers and the backend's blocking
//! calls.

use crate::backend::{BackendError, BackendErrorKind, ControlData, ControlResult, RawStatus};
use crate::control::{standard as std_req, ControlDirection, Recipient, RequestKind, SetupPacket};
use crate::descriptor::{self, encode_language_ids, encode_string};

use super::conn::{ep_index, Conn, ConnState};
use super::model::ControlReply;

/// What the controller does with a control transfer now.
pub(crate) enum Outcome {
    Done(ControlResult),
    Nak,
}

/// Run one control transfer against the connection and its model.
pub(crate) fn control(
    conn: &Conn,
    st: &mut ConnState,
    setup: &SetupPacket,
    data: &[u8],
) -> Outcome {
    let reply = match standard(conn, st, setup) {
        Some(r) => r,
        None => match st.model.as_mut() {
            Some(m) => m.control(setup, data),
            None => return Outcome::Done(Err(RawStatus::Disconnected)),
        },
    };
    Outcome::Done(match reply {
        ControlReply::Nak => return Outcome::Nak,
        ControlReply::Stall => Err(RawStatus::Stall),
        ControlReply::Data(mut v) if setup.direction() == ControlDirection::In => {
            v.truncate(usize::from(setup.length));
            Ok(ControlData::In(v))
        }
        ControlReply::Data(_) | ControlReply::Ack => match setup.direction() {
            ControlDirection::In => Ok(ControlData::In(Vec::new())),
            ControlDirection::Out => Ok(ControlData::Out(data.len())),
        },
    })
}

fn fail(kind: BackendErrorKind, message: &'static str) -> BackendError {
    BackendError::new(kind, message)
}

/// SET_CONFIGURATION.
pub(crate) fn set_configuration(
    conn: &Conn,
    st: &mut ConnState,
    value: u8,
) -> Result<(), BackendError> {
    if !st.alive {
        return Err(fail(BackendErrorKind::Disconnected, "device disconnected"));
    }
    if value != 0 && conn.config(value).is_none() {
        return Err(fail(BackendErrorKind::Stall, "no such configuration"));
    }
    if st.claimed != 0 {
        return Err(fail(BackendErrorKind::Busy, "interfaces are claimed"));
    }
    st.config = value;
    st.alts = [0; 32];
    for ep in st.eps.iter_mut() {
        ep.halted = false;
        ep.toggle = false;
    }
    conn.device_halts
        .store(0, std::sync::atomic::Ordering::Release);
    if let Some(m) = st.model.as_mut() {
        m.set_configuration(value);
    }
    Ok(())
}

/// SET_INTERFACE.
pub(crate) fn set_interface(
    conn: &Conn,
    st: &mut ConnState,
    interface: u8,
    alt: u8,
) -> Result<(), BackendError> {
    if !st.alive {
        return Err(fail(BackendErrorKind::Disconnected, "device disconnected"));
    }
    let Some(settings) = conn.config(st.config).and_then(|c| c.interface(interface)) else {
        return Err(fail(BackendErrorKind::Stall, "no such interface"));
    };
    if settings.alt(alt).is_none() {
        return Err(fail(BackendErrorKind::Stall, "no such alternate setting"));
    }
    // Every endpoint of the interface starts over: halt cleared, DATA0.
    for s in &settings.alt_settings {
        for e in &s.endpoints {
            let ep = &mut st.eps[ep_index(e.address)];
            ep.halted = false;
            ep.toggle = false;
        }
    }
    if let Some(a) = st.alts.get_mut(usize::from(interface)) {
        *a = alt;
    }
    if let Some(m) = st.model.as_mut() {
        m.set_interface(interface, alt);
    }
    Ok(())
}

/// CLEAR_FEATURE(ENDPOINT_HALT): un-halt, reset the toggle, tell the model.
pub(crate) fn clear_halt(conn: &Conn, st: &mut ConnState, address: u8) -> Result<(), BackendError> {
    if !st.alive {
        return Err(fail(BackendErrorKind::Disconnected, "device disconnected"));
    }
    if address & 0x0f != 0 && conn.find_endpoint(st, address).is_none() {
        return Err(fail(BackendErrorKind::Stall, "no such endpoint"));
    }
    let i = ep_index(address);
    conn.device_halts
        .fetch_and(!(1u32 << i), std::sync::atomic::Ordering::AcqRel);
    let ep = &mut st.eps[i];
    ep.halted = false;
    ep.toggle = false;
    if let Some(m) = st.model.as_mut() {
        m.clear_halt(address);
    }
    Ok(())
}

/// Merge halts set from the device side.
pub(crate) fn merge_device_halts(conn: &Conn, st: &mut ConnState) {
    let bits = conn.device_halts.load(std::sync::atomic::Ordering::Acquire);
    if bits != 0 {
        for i in 0..st.eps.len() {
            if bits & (1 << i) != 0 {
                st.eps[i].halted = true;
            }
        }
        // Keep the bits until cleared: GET_STATUS reads `halted`.
    }
}

fn reply(r: Result<(), BackendError>) -> ControlReply {
    match r {
        Ok(()) => ControlReply::Ack,
        Err(_) => ControlReply::Stall,
    }
}

/// The standard requests the simulator answers; `None` passes the request
/// to the model.
fn standard(conn: &Conn, st: &mut ConnState, setup: &SetupPacket) -> Option<ControlReply> {
    if setup.kind() != Some(RequestKind::Standard) {
        return None;
    }
    let recipient = setup.recipient()?;
    let [lo, hi] = setup.value.to_le_bytes();
    let r = match (setup.request, recipient) {
        (std_req::GET_DESCRIPTOR, Recipient::Device) => match hi {
            descriptor::DEVICE => ControlReply::Data(conn.device_bytes.clone()),
            descriptor::CONFIGURATION => match conn.descriptors.configurations.get(usize::from(lo))
            {
                Some(c) => ControlReply::Data(c.clone()),
                None => ControlReply::Stall,
            },
            descriptor::STRING if lo == 0 => {
                ControlReply::Data(encode_language_ids(&conn.descriptors.languages))
            }
            descriptor::STRING => match conn.descriptors.string(lo) {
                Some(s) => ControlReply::Data(encode_string(s)),
                None => ControlReply::Stall,
            },
            _ => return None,
        },
        (std_req::GET_STATUS, Recipient::Device) => {
            let self_powered = conn.config(st.config).is_some_and(|c| c.self_powered());
            ControlReply::Data(vec![u8::from(self_powered), 0])
        }
        (std_req::GET_STATUS, Recipient::Interface) => ControlReply::Data(vec![0, 0]),
        (std_req::GET_STATUS, Recipient::Endpoint) => {
            let address = setup.index as u8;
            if address & 0x0f != 0 && conn.find_endpoint(st, address).is_none() {
                ControlReply::Stall
            } else {
                merge_device_halts(conn, st);
                ControlReply::Data(vec![u8::from(st.eps[ep_index(address)].halted), 0])
            }
        }
        (std_req::CLEAR_FEATURE, Recipient::Endpoint)
            if setup.value == std_req::FEATURE_ENDPOINT_HALT =>
        {
            reply(clear_halt(conn, st, setup.index as u8))
        }
        (std_req::SET_FEATURE, Recipient::Endpoint)
            if setup.value == std_req::FEATURE_ENDPOINT_HALT =>
        {
            let address = setup.index as u8;
            if conn.find_endpoint(st, address).is_none() {
                ControlReply::Stall
            } else {
                st.eps[ep_index(address)].halted = true;
                ControlReply::Ack
            }
        }
        (std_req::SET_FEATURE | std_req::CLEAR_FEATURE, Recipient::Device) => ControlReply::Ack,
        (std_req::SET_ADDRESS, Recipient::Device) => ControlReply::Ack,
        (std_req::GET_CONFIGURATION, Recipient::Device) => ControlReply::Data(vec![st.config]),
        (std_req::SET_CONFIGURATION, Recipient::Device) => reply(set_configuration(conn, st, lo)),
        (std_req::GET_INTERFACE, Recipient::Interface) => {
            let n = setup.index as u8;
            match conn.config(st.config).and_then(|c| c.interface(n)) {
                Some(_) => ControlReply::Data(vec![st.alts[usize::from(n & 31)]]),
                None => ControlReply::Stall,
            }
        }
        (std_req::SET_INTERFACE, Recipient::Interface) => {
            reply(set_interface(conn, st, setup.index as u8, lo))
        }
        _ => return None,
    };
    Some(r)
}
