//! Nexmark q0–q8 (without q6) by hand, the floor for B1.
//!
//! Each query is the plan a careful person would write for the SQL in
//! `freshet_bench::nexmark::QUERIES`: project early, arrange once per join side,
//! `reduce` for aggregates, and `consolidate` the output (as a materialized view's sink
//! consolidates per timestamp). Events enter as full tuples of every field.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{anyhow, Result};
use differential_dataflow::hashable::Hashable;
use differential_dataflow::input::Input;
use differential_dataflow::{ExchangeData, VecCollection};
use freshet_bench::nexmark as events;
use serde_json::json;
use timely::dataflow::operators::probe::Handle;

/// id, name, email_address, credit_card, city, state, date_time, extra
type Person = (i64, String, String, String, String, String, i64, String);
/// id, item_name, description, initial_bid, reserve, date_time, expires, seller, category, extra
type Auction = (i64, String, String, i64, i64, i64, i64, i64, i64, String);
/// auction, bidder, price, channel, url, date_time, extra
type Bid = (i64, i64, i64, String, String, i64, String);

const W: i64 = events::WINDOW_MS;

/// Row counts, one slot per (query, run), shared by the workers.
type Counters = Arc<Vec<Mutex<i64>>>;

/// Consolidates the output, counts its rows into `rows.0[rows.1]`, and probes it.
fn finish<D>(output: VecCollection<'_, u64, D, isize>, probe: &Handle<u64>, rows: (Counters, usize))
where
    D: ExchangeData + Hashable,
{
    output
        .consolidate()
        .inspect(move |(_, _, diff)| *rows.0[rows.1].lock().expect("not poisoned") += *diff as i64)
        .probe_with(probe);
}

pub fn run(flags: &[String]) -> Result<()> {
    let n: u64 = crate::flag(flags, "--events", None)?;
    let queries: Vec<String> = crate::flag::<String>(flags, "--queries", None)?
        .split(',')
        .map(String::from)
        .collect();
    let runs: usize = crate::flag(flags, "--runs", None)?;
    let warmup: usize = crate::flag(flags, "--warmup", Some(0))?;
    let workers: usize = crate::flag(flags, "--workers", Some(1))?;

    let generated = events::generate(n);
    let persons: Vec<Person> = generated
        .person
        .iter()
        .map(|p| {
            (
                p.id as i64,
                p.name.clone(),
                p.email_address.clone(),
                p.credit_card.clone(),
                p.city.clone(),
                p.state.clone(),
                p.date_time as i64,
                p.extra.clone(),
            )
        })
        .collect();
    let auctions: Vec<Auction> = generated
        .auction
        .iter()
        .map(|a| {
            (
                a.id as i64,
                a.item_name.clone(),
                a.description.clone(),
                a.initial_bid as i64,
                a.reserve as i64,
                a.date_time as i64,
                a.expires as i64,
                a.seller as i64,
                a.category as i64,
                a.extra.clone(),
            )
        })
        .collect();
    let bids: Vec<Bid> = generated
        .bid
        .iter()
        .map(|b| {
            (
                b.auction as i64,
                b.bidder as i64,
                b.price as i64,
                b.channel.clone(),
                b.url.clone(),
                b.date_time as i64,
                b.extra.clone(),
            )
        })
        .collect();
    drop(generated);
    let data = Arc::new((persons, auctions, bids));
    let counters: Counters = Arc::new(
        (0..queries.len() * (warmup + runs))
            .map(|_| Mutex::new(0))
            .collect(),
    );

    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        let (index, peers) = (worker.index(), worker.peers());
        let mut out = Vec::new();
        for (q, query) in queries.iter().enumerate() {
            let mut seconds = Vec::new();
            let mut count = 0;
            for run in 0..warmup + runs {
                let slot = q * (warmup + runs) + run;
                let probe = Handle::new();
                let (mut p_in, mut a_in, mut b_in) = worker.dataflow::<u64, _, _>(|scope| {
                    let (p_in, persons) = scope.new_collection::<Person, isize>();
                    let (a_in, auctions) = scope.new_collection::<Auction, isize>();
                    let (b_in, bids) = scope.new_collection::<Bid, isize>();
                    let rows = (Arc::clone(&counters), slot);
                    match query.as_str() {
                        "q0" => finish(bids.map(|b| (b.0, b.1, b.2, b.5)), &probe, rows),
                        "q1" => finish(
                            bids.map(|b| (b.0, b.1, b.2 * 908 / 1000, b.5)),
                            &probe,
                            rows,
                        ),
                        "q2" => finish(
                            bids.filter(|b| b.0 % 123 == 0).map(|b| (b.0, b.2)),
                            &probe,
                            rows,
                        ),
                        "q3" => {
                            let a = auctions.filter(|a| a.8 == 10).map(|a| (a.7, a.0));
                            let p = persons
                                .filter(|p| ["or", "id", "ca"].contains(&p.5.as_str()))
                                .map(|p| (p.0, (p.1, p.4, p.5)));
                            finish(
                                a.join(p).map(|(_, (aid, (name, city, state)))| {
                                    (name, city, state, aid)
                                }),
                                &probe,
                                rows,
                            )
                        }
                        "q4" => {
                            let a = auctions.map(|a| (a.0, (a.8, a.5, a.6)));
                            let b = bids.map(|b| (b.0, (b.2, b.5)));
                            let finals = a
                                .join(b)
                                .filter(|(_, ((_, start, end), (_, at)))| start <= at && at <= end)
                                .map(|(id, ((category, _, _), (price, _)))| ((id, category), price))
                                .reduce(|_, input, output| {
                                    output.push((*input.last().unwrap().0, 1))
                                });
                            let avg = finals
                                .map(|((_, category), price)| (category, price))
                                .reduce(|_, input, output| {
                                    let (mut sum, mut count) = (0i64, 0i64);
                                    for (price, diff) in input {
                                        sum += **price * *diff as i64;
                                        count += *diff as i64;
                                    }
                                    output.push(((sum, count), 1));
                                });
                            finish(avg, &probe, rows)
                        }
                        "q5" => {
                            let counts = bids.map(|b| (b.0, b.5 / W)).count();
                            let maxes = counts.clone().map(|((_, win), num)| (win, num)).reduce(
                                |_, input, output| output.push((*input.last().unwrap().0, 1)),
                            );
                            finish(
                                counts
                                    .map(|((auction, win), num)| (win, (auction, num)))
                                    .join(maxes)
                                    .filter(|(_, ((_, num), max))| num >= max)
                                    .map(|(_, ((auction, num), _))| (auction, num as i64)),
                                &probe,
                                rows,
                            )
                        }
                        "q7" => {
                            let maxes =
                                bids.clone()
                                    .map(|b| (b.5 / W, b.2))
                                    .reduce(|_, input, output| {
                                        output.push((*input.last().unwrap().0, 1))
                                    });
                            finish(
                                bids.map(|b| ((b.5 / W, b.2), (b.0, b.1)))
                                    .join(maxes.map(|(win, price)| ((win, price), ())))
                                    .map(|((_, price), ((auction, bidder), ()))| {
                                        (auction, price, bidder)
                                    }),
                                &probe,
                                rows,
                            )
                        }
                        "q8" => {
                            let p = persons.map(|p| ((p.0, p.6 / W), p.1)).distinct();
                            let a = auctions.map(|a| ((a.7, a.5 / W), ())).distinct();
                            finish(
                                p.join(a).map(|((id, win), (name, ()))| (id, name, win)),
                                &probe,
                                rows,
                            )
                        }
                        other => panic!("unknown query {other}"),
                    }
                    (p_in, a_in, b_in)
                });
                let (persons, auctions, bids) = &*data;
                // The worker's share, copied before the clock starts.
                let p: Vec<Person> = persons.iter().skip(index).step_by(peers).cloned().collect();
                let a: Vec<Auction> = auctions
                    .iter()
                    .skip(index)
                    .step_by(peers)
                    .cloned()
                    .collect();
                let b: Vec<Bid> = bids.iter().skip(index).step_by(peers).cloned().collect();
                let start = Instant::now();
                for x in p {
                    p_in.insert(x);
                }
                for x in a {
                    a_in.insert(x);
                }
                for x in b {
                    b_in.insert(x);
                }
                p_in.advance_to(1);
                a_in.advance_to(1);
                b_in.advance_to(1);
                p_in.flush();
                a_in.flush();
                b_in.flush();
                worker.step_while(|| probe.less_than(&1));
                let elapsed = start.elapsed().as_secs_f64();
                if run >= warmup {
                    seconds.push(elapsed);
                }
                count = *counters[slot].lock().expect("not poisoned");
                drop((p_in, a_in, b_in));
                worker.step_while(|| !probe.done());
            }
            out.push((query.clone(), seconds, count));
        }
        out
    })
    .map_err(|e| anyhow!("{e}"))?;
    let mut results = guards.join();
    let first = results
        .remove(0)
        .map_err(|e| anyhow!("worker 0 failed: {e}"))?;
    let queries: serde_json::Map<String, serde_json::Value> = first
        .into_iter()
        .map(|(q, seconds, rows)| (q, json!({"seconds": seconds, "rows": rows})))
        .collect();
    let peak = freshet_bench::process_memory(std::process::id()).map_or(0, |(_, hwm)| hwm);
    println!(
        "{}",
        json!({"workers": workers, "events": n, "queries": queries, "peak_rss": peak})
    );
    Ok(())
}
