//! The BACnet/IP request path of a server device: BVLL, NPDU, APDU, then the service request,
//! on any bytes. A decoded request re-encoded with the client encoders must decode the same.
//! Network layer messages go to the router's decoders. The values a request carries on to
//! other decoders go there too: a written Recipient_List
//! (BACnetDestinations), an I-Am (binding a device recipient), and the body of an
//! EventNotification (what a client of the test suite decodes).
#![no_main]

use busbar_bacnet::apdu::{self, Apdu};
use busbar_bacnet::bvll::{self, Bvll};
use busbar_bacnet::consts::unconfirmed;
use busbar_bacnet::event::{self, client as event_client};
use busbar_bacnet::management::client as management_client;
use busbar_bacnet::npdu;
use busbar_bacnet::request::{decode_confirmed, decode_unconfirmed, Request};
use busbar_bacnet::service::{self, client};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = bvll::decode(data) else { return };
    let n = match msg {
        Bvll::OriginalUnicast(n) | Bvll::OriginalBroadcast(n) | Bvll::DistributeBroadcastToNetwork(n) => n,
        Bvll::ForwardedNpdu { npdu, .. } => npdu,
        _ => return,
    };
    let Ok(n) = npdu::decode(n) else { return };
    if n.network_message.is_some() {
        // What a router reads of Who-Is-Router-To-Network and I-Am-Router-To-Network.
        let _ = npdu::decode_who_is_router(n.apdu);
        let _ = npdu::decode_i_am_router(n.apdu);
        return;
    }
    let Ok(a) = apdu::decode(n.apdu) else { return };
    let (service, request) = match a {
        Apdu::ConfirmedRequest { service, body, .. } => (service, decode_confirmed(service, body)),
        Apdu::UnconfirmedRequest { service, body } => (service, decode_unconfirmed(service, body)),
        _ => return,
    };
    if let Apdu::UnconfirmedRequest { service: s, body } = a {
        if s == unconfirmed::I_AM {
            let _ = service::decode_i_am(body);
        }
        let _ = event::decode_event_notification(body);
    }
    let Ok(request) = request else { return };
    if let Request::WriteProperty(w) = &request {
        destinations_round_trip(&w.encoded);
    }
    let mut again = Vec::new();
    match &request {
        Request::ReadProperty(rp) => client::read_property(&mut again, rp.object, rp.property),
        Request::ReadPropertyMultiple(specs) => client::read_property_multiple(&mut again, specs),
        Request::WriteProperty(w) => client::write_property(&mut again, w),
        Request::SubscribeCov(s) => client::subscribe_cov(&mut again, s),
        Request::AcknowledgeAlarm(a) => event_client::acknowledge_alarm(&mut again, a),
        Request::GetEventInformation(last) => event_client::get_event_information(&mut again, *last),
        Request::DeviceCommunicationControl(c) => management_client::communication_control(&mut again, c),
        Request::ReinitializeDevice(r) => management_client::reinitialize_device(&mut again, r),
        Request::TimeSync(t) => {
            management_client::time_sync(&mut again, t);
            let service = if t.utc {
                unconfirmed::UTC_TIME_SYNCHRONIZATION
            } else {
                unconfirmed::TIME_SYNCHRONIZATION
            };
            assert_eq!(decode_unconfirmed(service, &again).ok(), Some(request.clone()));
            return;
        }
        _ => return,
    }
    let decoded = decode_confirmed(service, &again);
    // NaN never equals itself: compare encodings instead of values.
    let mut twice = Vec::new();
    match decoded {
        Ok(Request::ReadProperty(rp)) => client::read_property(&mut twice, rp.object, rp.property),
        Ok(Request::ReadPropertyMultiple(specs)) => client::read_property_multiple(&mut twice, &specs),
        Ok(Request::WriteProperty(w)) => client::write_property(&mut twice, &w),
        Ok(Request::SubscribeCov(s)) => client::subscribe_cov(&mut twice, &s),
        Ok(Request::AcknowledgeAlarm(a)) => event_client::acknowledge_alarm(&mut twice, &a),
        Ok(Request::GetEventInformation(last)) => event_client::get_event_information(&mut twice, last),
        Ok(Request::DeviceCommunicationControl(c)) => management_client::communication_control(&mut twice, &c),
        Ok(Request::ReinitializeDevice(r)) => management_client::reinitialize_device(&mut twice, &r),
        other => panic!("re-encoded {request:?} decoded as {other:?}"),
    }
    assert_eq!(again, twice, "encoding is stable");
});

/// A Recipient_List that decodes re-encodes to one that decodes the same.
fn destinations_round_trip(value: &[u8]) {
    let Ok(list) = event::decode_destinations(value) else {
        return;
    };
    let mut again = Vec::new();
    for d in &list {
        d.encode(&mut again);
    }
    match event::decode_destinations(&again) {
        Ok(twice) => assert_eq!(list, twice, "a Recipient_List survives re-encoding"),
        Err(e) => panic!("re-encoded {list:?} does not decode: {e:?}"),
    }
}
