//! Delivery bookkeeping of the realtime scenarios, kept free of I/O so it can be unit-tested.
//!
//! Each subscriber task only records what it received ([`Rx`], a few words per event). When
//! the run is over, every connection's record is checked against the writer's log
//! ([`WriteLog`]) on its own ([`analyze`]) and the per-connection results are added up
//! ([`Totals`]); nothing is shared between subscribers while events arrive.

use std::collections::{HashMap, HashSet};

use crate::hist::Histogram;

/// What a write did to a document, and the event it should cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Create,
    Update,
    Delete,
}

impl Kind {
    /// The event name the server pushes: `post`, `put`, `del`.
    pub fn from_event(name: &str) -> Option<Kind> {
        match name {
            "post" => Some(Kind::Create),
            "put" => Some(Kind::Update),
            "del" => Some(Kind::Delete),
            _ => None,
        }
    }
}

/// One pushed change event as a subscriber received it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rx {
    /// Receive time, µs since the UNIX epoch.
    pub recv_us: u64,
    /// `data.seq` (per model, strictly increasing on a healthy feed).
    pub seq: Option<u64>,
    pub kind: Kind,
    /// `data.item.n`: the index of the write (for `del`, of the document's last write before
    /// the delete, since the deleted document is sent as it was).
    pub n: Option<u32>,
    /// `data.item.bar` as a number: the write's send time in µs since the UNIX epoch.
    pub bar_us: Option<u64>,
    /// `data.item.foo` is this run's tag: one of our writes, not someone else's.
    pub ours: bool,
}

/// How a write went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteState {
    /// Answered 2xx: every subscriber should see its event.
    Ok,
    /// Sent, but failed (non-2xx, transport error or timeout).
    Failed,
    /// Not sent (its document's create failed), or never reached.
    Skipped,
}

/// One write of the run; its index is the `n` it carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteRec {
    pub kind: Kind,
    pub state: WriteState,
    /// Send time, µs since the UNIX epoch (the value of `bar` for creates and updates).
    pub send_us: u64,
    /// Request round trip in µs.
    pub rtt_us: u64,
    /// For a delete: the `n` of the document's last successful write, which the `del`
    /// event's item carries.
    pub prev_n: Option<u32>,
}

impl WriteRec {
    pub fn skipped(kind: Kind) -> Self {
        WriteRec {
            kind,
            state: WriteState::Skipped,
            send_us: 0,
            rtt_us: 0,
            prev_n: None,
        }
    }
}

/// Every write of the run, indexed by `n`, and how to find the write an event stands for.
#[derive(Debug, Default)]
pub struct WriteLog {
    pub writes: Vec<WriteRec>,
    /// `prev_n` of each successful delete -> the delete's index.
    delete_by_prev: HashMap<u32, u32>,
}

impl WriteLog {
    pub fn new(writes: Vec<WriteRec>) -> Self {
        let delete_by_prev = (0u32..)
            .zip(&writes)
            .filter(|(_, w)| w.kind == Kind::Delete && w.state == WriteState::Ok)
            .filter_map(|(i, w)| w.prev_n.map(|p| (p, i)))
            .collect();
        WriteLog {
            writes,
            delete_by_prev,
        }
    }

    /// Writes that succeeded, i.e. events every subscriber should receive.
    pub fn ok(&self) -> u64 {
        self.writes
            .iter()
            .filter(|w| w.state == WriteState::Ok)
            .count() as u64
    }

    /// The successful write `rx` reports, and its latency in µs: receive time minus the send
    /// time carried in `bar` (creates, updates) or logged by the writer (deletes, whose item is
    /// the document as it was before).
    pub fn match_event(&self, rx: &Rx) -> Option<(u32, u64)> {
        let n = rx.n?;
        let (idx, sent_us) = match rx.kind {
            Kind::Create | Kind::Update => {
                let w = self.writes.get(n as usize)?;
                if w.kind != rx.kind || w.state != WriteState::Ok {
                    return None;
                }
                (n, rx.bar_us.unwrap_or(w.send_us))
            }
            Kind::Delete => {
                let idx = *self.delete_by_prev.get(&n)?;
                (idx, self.writes.get(idx as usize)?.send_us)
            }
        };
        Some((idx, rx.recv_us.saturating_sub(sent_us)))
    }
}

/// The event counters of one connection, or of all of them added up.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Change events of the subscribed model, ours or not.
    pub events: u64,
    /// Events of this run's writes (including duplicates and unmatched ones).
    pub received: u64,
    /// Distinct successful writes seen: `expected - unique` were lost on this connection.
    pub unique: u64,
    /// Events whose `seq` this connection had already seen.
    pub duplicates: u64,
    /// Events (not duplicates) whose `seq` is not greater than the previous event's.
    pub out_of_order: u64,
    /// Events without a numeric `data.seq`.
    pub missing_seq: u64,
    /// Events of the model caused by someone else's writes.
    pub foreign: u64,
    /// Events of ours that match no successful write (e.g. a write that timed out here but
    /// was applied by the server), or a second event (new seq) for a write already seen.
    pub unmatched: u64,
}

impl Counts {
    fn add(&mut self, c: &Counts) {
        self.events += c.events;
        self.received += c.received;
        self.unique += c.unique;
        self.duplicates += c.duplicates;
        self.out_of_order += c.out_of_order;
        self.missing_seq += c.missing_seq;
        self.foreign += c.foreign;
        self.unmatched += c.unmatched;
    }
}

/// What one connection saw, checked against the write log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ConnStats {
    pub counts: Counts,
    /// `(write index, latency µs)` of each write's first delivery.
    pub deliveries: Vec<(u32, u64)>,
    /// Receive time of the last delivery, µs since the UNIX epoch.
    pub last_recv_us: Option<u64>,
}

/// Checks one connection's events, in arrival order, against the write log.
pub fn analyze(events: &[Rx], log: &WriteLog) -> ConnStats {
    let mut st = ConnStats::default();
    let mut seqs: HashSet<u64> = HashSet::with_capacity(events.len());
    let mut seen_writes: HashSet<u32> = HashSet::with_capacity(events.len());
    let mut prev_seq: Option<u64> = None;
    for rx in events {
        st.counts.events += 1;
        if rx.ours {
            st.counts.received += 1;
        }
        match rx.seq {
            Some(seq) => {
                if !seqs.insert(seq) {
                    st.counts.duplicates += 1;
                    continue;
                }
                if prev_seq.is_some_and(|p| seq <= p) {
                    st.counts.out_of_order += 1;
                }
                prev_seq = Some(seq);
            }
            None => st.counts.missing_seq += 1,
        }
        if !rx.ours {
            st.counts.foreign += 1;
            continue;
        }
        match log.match_event(rx) {
            Some((idx, latency_us)) if seen_writes.insert(idx) => {
                st.counts.unique += 1;
                st.deliveries.push((idx, latency_us));
                st.last_recv_us = st.last_recv_us.max(Some(rx.recv_us));
            }
            _ => st.counts.unmatched += 1,
        }
    }
    st
}

/// All connections' [`ConnStats`] added up, plus per-write completion.
#[derive(Debug)]
pub struct Totals {
    pub connections: u64,
    pub counts: Counts,
    /// Latency of every first delivery (write x subscriber).
    pub latency: Histogram,
    pub last_recv_us: Option<u64>,
    /// Per write: subscribers that got it, and the latest latency among them.
    per_write_count: Vec<u64>,
    per_write_max_us: Vec<u64>,
}

impl Totals {
    pub fn new(writes: usize) -> Self {
        Totals {
            connections: 0,
            counts: Counts::default(),
            latency: Histogram::new(),
            last_recv_us: None,
            per_write_count: vec![0; writes],
            per_write_max_us: vec![0; writes],
        }
    }

    pub fn add(&mut self, c: &ConnStats) {
        self.connections += 1;
        self.counts.add(&c.counts);
        self.last_recv_us = self.last_recv_us.max(c.last_recv_us);
        for &(idx, us) in &c.deliveries {
            self.latency.record_us(us);
            if let (Some(count), Some(max)) = (
                self.per_write_count.get_mut(idx as usize),
                self.per_write_max_us.get_mut(idx as usize),
            ) {
                *count += 1;
                *max = (*max).max(us);
            }
        }
    }

    /// Deliveries expected: successful writes x connections that were subscribed.
    pub fn expected(&self, log: &WriteLog) -> u64 {
        log.ok() * self.connections
    }

    /// Expected deliveries that never arrived.
    pub fn lost(&self, log: &WriteLog) -> u64 {
        self.expected(log).saturating_sub(self.counts.unique)
    }

    /// For each successful write that reached all `subscribers`: the time from its send until
    /// the last of them had it.
    pub fn all_reached(&self, log: &WriteLog, subscribers: u64) -> Histogram {
        let mut h = Histogram::new();
        for ((w, &count), &max) in log
            .writes
            .iter()
            .zip(&self.per_write_count)
            .zip(&self.per_write_max_us)
        {
            if w.state == WriteState::Ok && subscribers > 0 && count >= subscribers {
                h.record_us(max);
            }
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(kind: Kind, send_us: u64, prev_n: Option<u32>) -> WriteRec {
        WriteRec {
            kind,
            state: WriteState::Ok,
            send_us,
            rtt_us: 500,
            prev_n,
        }
    }

    fn rx(seq: u64, kind: Kind, n: u32, bar_us: u64, recv_us: u64) -> Rx {
        Rx {
            recv_us,
            seq: Some(seq),
            kind,
            n: Some(n),
            bar_us: Some(bar_us),
            ours: true,
        }
    }

    /// create 0, update 1, delete 2 of one document, then create 3.
    fn cud_log() -> WriteLog {
        WriteLog::new(vec![
            ok(Kind::Create, 1_000, None),
            ok(Kind::Update, 2_000, None),
            ok(Kind::Delete, 3_000, Some(1)),
            ok(Kind::Create, 4_000, None),
        ])
    }

    #[test]
    fn clean_feed_has_no_loss_and_exact_latencies() {
        let log = cud_log();
        let events = [
            rx(10, Kind::Create, 0, 1_000, 1_500),
            rx(11, Kind::Update, 1, 2_000, 2_100),
            // The deleted document still carries the update's n and bar.
            rx(12, Kind::Delete, 1, 2_000, 3_700),
            rx(13, Kind::Create, 3, 4_000, 4_010),
        ];
        let st = analyze(&events, &log);
        assert_eq!(
            (
                st.counts.events,
                st.counts.received,
                st.counts.unique,
                st.counts.duplicates,
                st.counts.out_of_order
            ),
            (4, 4, 4, 0, 0)
        );
        assert_eq!(
            (
                st.counts.foreign,
                st.counts.unmatched,
                st.counts.missing_seq
            ),
            (0, 0, 0)
        );
        assert_eq!(st.deliveries, vec![(0, 500), (1, 100), (2, 700), (3, 10)]);
        assert_eq!(st.last_recv_us, Some(4_010));
    }

    #[test]
    fn counts_loss_duplicates_and_reordering() {
        let log = cud_log();
        let events = [
            rx(11, Kind::Update, 1, 2_000, 2_100),
            rx(10, Kind::Create, 0, 1_000, 2_200), // arrives after 11: out of order
            rx(10, Kind::Create, 0, 1_000, 2_300), // seq 10 again: duplicate
            rx(13, Kind::Create, 3, 4_000, 4_100),
            rx(11, Kind::Update, 1, 2_000, 4_200), // older duplicate: not also out of order
        ];
        let st = analyze(&events, &log);
        assert_eq!(st.counts.events, 5);
        assert_eq!(st.counts.received, 5);
        assert_eq!(st.counts.unique, 3, "the delete (write 2) never arrived");
        assert_eq!(st.counts.duplicates, 2);
        assert_eq!(st.counts.out_of_order, 1);
        let mut t = Totals::new(log.writes.len());
        t.add(&st);
        assert_eq!((t.expected(&log), t.lost(&log)), (4, 1));
    }

    #[test]
    fn foreign_and_unmatched_events_are_not_deliveries() {
        let mut writes = cud_log().writes;
        writes[3].state = WriteState::Failed; // timed out here, yet applied by the server
        let log = WriteLog::new(writes);
        let mut foreign = rx(20, Kind::Create, 0, 1, 5_000);
        foreign.ours = false;
        let no_seq = Rx {
            seq: None,
            ..rx(0, Kind::Create, 0, 1_000, 1_200)
        };
        let events = [
            foreign,
            rx(21, Kind::Create, 3, 4_000, 4_100), // write 3 failed
            rx(22, Kind::Update, 0, 1_000, 4_200), // write 0 is a create, not an update
            rx(23, Kind::Delete, 0, 1_000, 4_300), // no delete followed n = 0
            no_seq,
            rx(24, Kind::Create, 0, 1_000, 4_400), // write 0 again under a new seq
        ];
        let st = analyze(&events, &log);
        assert_eq!(
            (st.counts.events, st.counts.received, st.counts.foreign),
            (6, 5, 1)
        );
        assert_eq!(
            (st.counts.unique, st.counts.unmatched, st.counts.missing_seq),
            (1, 4, 1)
        );
        assert_eq!(st.deliveries, vec![(0, 200)]);
        assert_eq!(log.ok(), 3);
    }

    #[test]
    fn latency_falls_back_to_the_logged_send_time_without_bar() {
        let log = cud_log();
        let e = Rx {
            bar_us: None,
            ..rx(1, Kind::Create, 3, 0, 4_250)
        };
        assert_eq!(log.match_event(&e), Some((3, 250)));
        // A receive time before the send time (clock step) saturates at 0.
        assert_eq!(
            log.match_event(&rx(1, Kind::Create, 0, 9_000, 8_000)),
            Some((0, 0))
        );
    }

    #[test]
    fn totals_merge_connections_like_one_histogram() {
        let writes: Vec<WriteRec> = (0..50u64)
            .map(|i| ok(Kind::Create, 1_000_000 + i * 20_000, None))
            .collect();
        let log = WriteLog::new(writes);
        let mut all = Histogram::new();
        let mut totals = Totals::new(log.writes.len());
        for conn in 0..40u64 {
            // Connection 39 misses write 7; the others get everything.
            let events: Vec<Rx> = (0..50u32)
                .filter(|&i| !(conn == 39 && i == 7))
                .map(|i| {
                    let sent = 1_000_000 + u64::from(i) * 20_000;
                    let lat = 300 + conn * 97 + u64::from(i) * 13;
                    all.record_us(lat);
                    rx(u64::from(i) + 1, Kind::Create, i, sent, sent + lat)
                })
                .collect();
            totals.add(&analyze(&events, &log));
        }
        assert_eq!(totals.connections, 40);
        assert_eq!(
            (totals.expected(&log), totals.counts.unique),
            (2_000, 1_999)
        );
        assert_eq!(totals.lost(&log), 1);
        for p in [50.0, 90.0, 99.0, 100.0] {
            assert_eq!(
                totals.latency.percentile_us(p),
                all.percentile_us(p),
                "p{p}"
            );
        }
        assert_eq!(totals.latency.max_us(), Some(300 + 39 * 97 + 49 * 13));
        // Every write but 7 reached all 40; the slowest subscriber is connection 39.
        let reached = totals.all_reached(&log, 40);
        assert_eq!(reached.max_us(), Some(300 + 39 * 97 + 49 * 13));
        let mut h = Histogram::new();
        for i in (0..50u64).filter(|&i| i != 7) {
            h.record_us(300 + 39 * 97 + i * 13);
        }
        for p in [0.0, 50.0, 99.0] {
            assert_eq!(reached.percentile_us(p), h.percentile_us(p), "p{p}");
        }
        assert_eq!(totals.all_reached(&log, 41).max_us(), None);
        assert_eq!(
            totals.last_recv_us,
            Some(1_000_000 + 49 * 20_000 + 300 + 39 * 97 + 49 * 13)
        );
    }
}
