//! Nexmark events for B1, from the `nexmark` crate with a fixed configuration.
//!
//! The generator is deterministic given its configuration (every event is seeded by
//! its id); we fix `base_time` (the crate defaults to the clock) and keep the other
//! defaults (10,000 events per second of event time, 1 person : 3 auctions : 46 bids).
//! Timestamps are stored as `bigint` milliseconds, so the SQL and the differential
//! dataflow program compute windows the same way (`date_time / 10000`: 10 s tumbling
//! windows, since Freshet has no window functions or `TUMBLE`/`HOP` yet).

use nexmark::config::NexmarkConfig;
use nexmark::event::{Auction, Bid, Event, Person};
use nexmark::EventGenerator;

/// The fixed base time of the generator (2023-11-14T22:13:20Z), in ms since the epoch.
pub const BASE_TIME: u64 = 1_700_000_000_000;

/// Window length of the windowed queries, in ms.
pub const WINDOW_MS: i64 = 10_000;

pub const DDL: [&str; 3] = [
    "CREATE TABLE person (id bigint, name text, email_address text, credit_card text, city text, state text, date_time bigint, extra text)",
    "CREATE TABLE auction (id bigint, item_name text, description text, initial_bid bigint, reserve bigint, date_time bigint, expires bigint, seller bigint, category bigint, extra text)",
    "CREATE TABLE bid (auction bigint, bidder bigint, price bigint, channel text, url text, date_time bigint, extra text)",
];

/// The queries, as Freshet (and PostgreSQL) SQL. Windowed queries use
/// `date_time / 10000` as a 10 s tumbling window instead of `TUMBLE`/`HOP`.
pub const QUERIES: [(&str, &str); 8] = [
    ("q0", "SELECT auction, bidder, price, date_time FROM bid"),
    (
        "q1",
        "SELECT auction, bidder, price * 908 / 1000 AS price, date_time FROM bid",
    ),
    ("q2", "SELECT auction, price FROM bid WHERE auction % 123 = 0"),
    (
        "q3",
        "SELECT p.name, p.city, p.state, a.id FROM auction a JOIN person p ON a.seller = p.id \
         WHERE a.category = 10 AND p.state IN ('or', 'id', 'ca')",
    ),
    (
        "q4",
        "SELECT q.category, avg(q.final) AS avg_final FROM \
         (SELECT max(b.price) AS final, a.category FROM auction a JOIN bid b ON a.id = b.auction \
          WHERE b.date_time BETWEEN a.date_time AND a.expires GROUP BY a.id, a.category) q \
         GROUP BY q.category",
    ),
    (
        "q5",
        "SELECT ab.auction, ab.num FROM \
         (SELECT auction, date_time / 10000 AS win, count(*) AS num FROM bid GROUP BY auction, date_time / 10000) ab \
         JOIN (SELECT win, max(num) AS maxn FROM \
               (SELECT auction, date_time / 10000 AS win, count(*) AS num FROM bid GROUP BY auction, date_time / 10000) c \
               GROUP BY win) mb \
         ON ab.win = mb.win AND ab.num >= mb.maxn",
    ),
    (
        "q7",
        "SELECT b.auction, b.price, b.bidder FROM bid b JOIN \
         (SELECT date_time / 10000 AS win, max(price) AS maxprice FROM bid GROUP BY date_time / 10000) m \
         ON b.date_time / 10000 = m.win AND b.price = m.maxprice",
    ),
    (
        "q8",
        "SELECT p.id, p.name, p.win FROM \
         (SELECT id, name, date_time / 10000 AS win FROM person GROUP BY id, name, date_time / 10000) p \
         JOIN (SELECT seller, date_time / 10000 AS win FROM auction GROUP BY seller, date_time / 10000) a \
         ON p.id = a.seller AND p.win = a.win",
    ),
];

/// The first `n` events, split by kind.
#[derive(Default)]
pub struct Events {
    pub person: Vec<Person>,
    pub auction: Vec<Auction>,
    pub bid: Vec<Bid>,
}

pub fn generate(n: u64) -> Events {
    let config = NexmarkConfig {
        base_time: BASE_TIME,
        ..Default::default()
    };
    let mut events = Events::default();
    for event in EventGenerator::new(config).take(n as usize) {
        match event {
            Event::Person(p) => events.person.push(p),
            Event::Auction(a) => events.auction.push(a),
            Event::Bid(b) => events.bid.push(b),
        }
    }
    events
}

/// A text field in COPY text format.
fn text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// The COPY text of the three tables: `(person, auction, bid)`.
pub fn tsv(events: &Events) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    use std::fmt::Write;
    let mut person = String::new();
    for p in &events.person {
        let _ = write!(person, "{}\t", p.id);
        for s in [&p.name, &p.email_address, &p.credit_card, &p.city, &p.state] {
            text(&mut person, s);
            person.push('\t');
        }
        let _ = write!(person, "{}\t", p.date_time);
        text(&mut person, &p.extra);
        person.push('\n');
    }
    let mut auction = String::new();
    for a in &events.auction {
        let _ = write!(auction, "{}\t", a.id);
        text(&mut auction, &a.item_name);
        auction.push('\t');
        text(&mut auction, &a.description);
        let _ = write!(
            auction,
            "\t{}\t{}\t{}\t{}\t{}\t{}\t",
            a.initial_bid, a.reserve, a.date_time, a.expires, a.seller, a.category
        );
        text(&mut auction, &a.extra);
        auction.push('\n');
    }
    let mut bid = String::new();
    for b in &events.bid {
        let _ = write!(bid, "{}\t{}\t{}\t", b.auction, b.bidder, b.price);
        text(&mut bid, &b.channel);
        bid.push('\t');
        text(&mut bid, &b.url);
        let _ = write!(bid, "\t{}\t", b.date_time);
        text(&mut bid, &b.extra);
        bid.push('\n');
    }
    (person.into_bytes(), auction.into_bytes(), bid.into_bytes())
}
