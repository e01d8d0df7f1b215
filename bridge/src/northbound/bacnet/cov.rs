//! COV: subscriptions (SubscribeCOV, SubscribeCOVProperty) with their lifetimes, the
//! notifications due when a subscribed object changes (COV_Increment, Status_Flags), confirmed
//! notifications retried until acknowledged, and the housekeeping that expires subscriptions
//! and foreign-device registrations. Times come from the store's clock.

use super::*;

impl Server {
    pub(super) fn subscribe(&self, peer: &Peer, s: SubscribeCov) -> Result<(), PropError> {
        let Some(object) = self.table.find(s.object) else {
            return Err(if self.table.is_device(s.object) {
                (error_class::SERVICES, error_code::COV_SUBSCRIPTION_FAILED)
            } else {
                UNKNOWN_OBJECT
            });
        };
        if let Some(p) = s.property {
            if !matches!(p.property, prop::PRESENT_VALUE | prop::STATUS_FLAGS) || p.index.is_some() {
                return Err((error_class::PROPERTY, error_code::NOT_COV_PROPERTY));
            }
        }
        let mut st = self.state();
        let same = |c: &CovSubscription| {
            c.peer == *peer && c.process_id == s.process_id && c.object == object && c.property == s.property
        };
        let before = st.subscriptions.len();
        if s.is_cancellation() {
            st.subscriptions.retain(|c| !same(c));
            self.count_subscriptions(before, st.subscriptions.len());
            return Ok(());
        }
        let lifetime = s.lifetime.unwrap_or(0);
        let sub = CovSubscription {
            peer: peer.clone(),
            process_id: s.process_id,
            object,
            property: s.property,
            increment: s.cov_increment,
            confirmed: s.confirmed.unwrap_or(false),
            expires: (lifetime > 0).then(|| self.store.clock().now() + Duration::from_secs(u64::from(lifetime))),
            last: None,
        };
        if let Some(existing) = st.subscriptions.iter_mut().find(|c| same(c)) {
            *existing = sub;
        } else if self.stats.subscriptions.load(Ordering::Relaxed) >= self.settings.max_cov_subscriptions as u64 {
            // The limit is for all the bridge's BACnet devices together.
            return Err((error_class::RESOURCES, error_code::NO_SPACE_TO_ADD_LIST_ELEMENT));
        } else {
            st.subscriptions.push(sub);
        }
        self.count_subscriptions(before, st.subscriptions.len());
        Ok(())
    }

    /// Keep the total of every device's subscriptions (the gauge and the limit) as this
    /// device's went from `before` to `after`.
    pub(super) fn count_subscriptions(&self, before: usize, after: usize) {
        if after >= before {
            self.stats
                .subscriptions
                .fetch_add((after - before) as u64, Ordering::Relaxed);
        } else {
            self.stats
                .subscriptions
                .fetch_sub((before - after) as u64, Ordering::Relaxed);
        }
    }

    /// The values a subscription reports now: (Present_Value, Status_Flags).
    fn cov_values(&self, object: usize, state: Option<&ObjectState>) -> Option<(Value, Value)> {
        let o = self.table.objects.get(object)?;
        let sample = self.store.sample(o.point).unwrap_or_default();
        let flags = match state {
            Some(s) => o.status_flags(s, &sample),
            None => status_flags(&sample, o.range),
        };
        Some((o.present_value(&sample), flags))
    }

    /// Build the notifications due for the subscriptions `which` selects; `force` sends even
    /// without a change (initial notifications).
    pub(super) fn due_notifications(
        &self,
        which: impl Fn(&CovSubscription) -> bool,
        force: bool,
    ) -> Vec<(SocketAddrV4, Vec<u8>)> {
        let now = self.store.clock().now();
        let mut out = Vec::new();
        let mut st = self.state();
        let State {
            subscriptions,
            objects,
            pending,
            next_invoke,
            ..
        } = &mut *st;
        // The values of one object, read once however many subscribe to it.
        let mut memo: Option<(usize, (Value, Value))> = None;
        let pv = PropertyRef {
            property: prop::PRESENT_VALUE,
            index: None,
        };
        let flags = PropertyRef {
            property: prop::STATUS_FLAGS,
            index: None,
        };
        // An expired subscription is never served, even before housekeeping drops it.
        for sub in subscriptions
            .iter_mut()
            .filter(|s| which(s) && s.expires.is_none_or(|e| e > now))
        {
            let current = match &memo {
                Some((object, values)) if *object == sub.object => values.clone(),
                _ => {
                    let Some(values) = self.cov_values(sub.object, objects.get(sub.object)) else {
                        continue;
                    };
                    memo = Some((sub.object, values.clone()));
                    values
                }
            };
            let increment = sub
                .increment
                .or_else(|| objects.get(sub.object).map(|s| s.cov_increment))
                .unwrap_or(0.0);
            let o = &self.table.objects[sub.object];
            let due = force
                || sub
                    .last
                    .as_ref()
                    .is_none_or(|last| cov_due(o, increment, last, &current));
            if !due {
                continue;
            }
            let remaining = sub
                .expires
                .map_or(0, |e| e.saturating_duration_since(now).as_secs().max(1) as u32);
            // Status_Flags always; Present_Value (or the subscribed property) unless only the
            // flags were asked for.
            let mut values = Vec::with_capacity(2);
            match sub.property {
                Some(p) if p.property == prop::STATUS_FLAGS => {}
                Some(p) => values.push((p, vec![current.0.clone()])),
                None => values.push((pv, vec![current.0.clone()])),
            }
            values.push((flags, vec![current.1.clone()]));
            let mut a = Vec::with_capacity(64);
            let invoke = sub.confirmed.then(|| {
                // An invoke id not in flight; with 256 in flight the oldest is given up.
                let id = *next_invoke;
                *next_invoke = next_invoke.wrapping_add(1);
                id
            });
            match invoke {
                Some(id) => apdu::confirmed_request_header(&mut a, id, confirmed::CONFIRMED_COV_NOTIFICATION),
                None => apdu::unconfirmed_request_header(&mut a, unconfirmed::UNCONFIRMED_COV_NOTIFICATION),
            }
            service::encode_cov_notification(&mut a, sub.process_id, self.table.device.id, o.id, remaining, &values);
            let datagram = self.unicast_datagram(&sub.peer, invoke.is_some(), &a);
            if let Some(id) = invoke {
                pending.insert(
                    id,
                    Pending {
                        peer: sub.peer.addr,
                        datagram: datagram.clone(),
                        sent: now,
                        tries: 1,
                    },
                );
            }
            out.push((sub.peer.addr, datagram));
            sub.last = Some(current);
        }
        out
    }

    pub(super) async fn send_all(&self, datagrams: Vec<(SocketAddrV4, Vec<u8>)>) {
        self.stats
            .notifications
            .fetch_add(datagrams.len() as u64, Ordering::Relaxed);
        for (to, d) in datagrams {
            self.send(to, &d).await;
        }
    }

    /// Initial notifications of a peer's new subscriptions.
    pub(super) async fn notify_peer_now(&self, peer: &Peer) {
        if !self.may_initiate() {
            return;
        }
        let d = self.due_notifications(|s| s.peer == *peer && s.last.is_none(), true);
        self.send_all(d).await;
    }

    /// COV notifications from the store's change notices, for every device of the bridge in
    /// one task (a change goes to the device that serves its point).
    pub(super) async fn notify(devices: Arc<Devices>, mut shutdown: watch::Receiver<bool>) {
        let Some(first) = devices.all.first() else { return };
        let mut changes = first.store.subscribe();
        loop {
            let notice = tokio::select! {
                n = changes.next() => n,
                _ = shutdown.changed() => return,
            };
            match notice {
                Notice::Changed(p) => {
                    let Some(d) = devices.of_point(p) else { continue };
                    let Some(object) = d.table.of_point(p) else { continue };
                    // DeviceCommunicationControl: the changes are told once it ends (each
                    // subscription compares with what it was last told).
                    if d.may_initiate() {
                        let out = d.due_notifications(|s| s.object == object, false);
                        d.send_all(out).await;
                    }
                }
                Notice::Resync => {
                    for d in devices.all.iter().filter(|d| d.may_initiate()) {
                        let out = d.due_notifications(|_| true, false);
                        d.send_all(out).await;
                    }
                }
                Notice::Closed => return,
            }
        }
    }

    /// Once a second, for every device of the bridge in one task: expire subscriptions and
    /// foreign devices, retry unacknowledged confirmed notifications.
    pub(super) async fn housekeeping(devices: Arc<Devices>, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            for d in &devices.all {
                d.housekeep().await;
            }
        }
    }

    async fn housekeep(&self) {
        let now = self.store.clock().now();
        let timeout = self.settings.apdu.timeout;
        // No retries while DeviceCommunicationControl disables initiation: they wait.
        let initiate = self.may_initiate();
        let mut resend = Vec::new();
        if self.table.device.route.is_none() {
            // The site device keeps the link's foreign devices.
            let mut fdt = self.fdt();
            fdt.retain(|a, (_, lapse)| {
                let keep = *lapse > now;
                if !keep {
                    tracing::info!("bacnet: foreign device {a} registration lapsed");
                }
                keep
            });
            self.stats.foreign_devices.store(fdt.len() as u64, Ordering::Relaxed);
        }
        {
            let mut st = self.state();
            let before = st.subscriptions.len();
            st.subscriptions.retain(|s| s.expires.is_none_or(|e| e > now));
            self.count_subscriptions(before, st.subscriptions.len());
            st.pending.retain(|_, p| {
                if !initiate || now.duration_since(p.sent) < timeout {
                    return true;
                }
                if p.tries > u64::from(self.settings.apdu.retries) {
                    tracing::warn!("bacnet: confirmed notification to {} never acknowledged", p.peer);
                    return false;
                }
                p.tries += 1;
                p.sent = now;
                resend.push((p.peer, p.datagram.clone()));
                true
            });
        }
        for (to, d) in resend {
            self.send(to, &d).await;
        }
    }
}
