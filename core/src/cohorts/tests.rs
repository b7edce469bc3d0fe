use proptest::prelude::*;

use super::*;

fn d(y: i32, m: u32, dd: u32) -> Day {
    Day::from_ymd(y, m, dd).unwrap()
}

fn ev(user: i64, day: Day, amount: f64) -> Event {
    Event {
        user,
        day: day.0,
        amount,
    }
}

fn opts(period: Period, max_periods: u32, as_of: Day) -> Options {
    Options {
        period,
        max_periods,
        as_of,
        kind: Kind::FirstTime,
        cumulative: false,
        data_start: None,
    }
}

#[test]
fn weeks_start_on_monday_and_periods_are_calendar_periods() {
    // 2024-01-01 was a Monday; 2023-12-31 a Sunday.
    let w = Period::Week;
    assert_eq!(w.index(d(2024, 1, 1)), w.index(d(2024, 1, 7)));
    assert_eq!(w.index(d(2024, 1, 1)), w.index(d(2023, 12, 31)) + 1);
    assert_eq!(w.start(w.index(d(2024, 1, 5))), Some(d(2024, 1, 1)));
    let m = Period::Month;
    assert_eq!(m.index(d(1998, 1, 31)) - m.index(d(1997, 1, 1)), 12);
    assert_eq!(m.start(m.index(d(1997, 3, 17))), Some(d(1997, 3, 1)));
    let q = Period::Quarter;
    assert_eq!(q.start(q.index(d(2011, 8, 15))), Some(d(2011, 7, 1)));
    assert_eq!(q.index(d(2012, 1, 1)) - q.index(d(2011, 12, 31)), 1);
    assert_eq!(
        Period::Day.start(Period::Day.index(d(2000, 1, 1))),
        Some(Day(0))
    );
}

proptest! {
    #[test]
    fn every_day_lies_in_its_period(day in -200_000i32..200_000, which in 0usize..4) {
        let p = [Period::Day, Period::Week, Period::Month, Period::Quarter][which];
        let k = p.index(Day(day));
        let start = p.start(k).unwrap();
        let next = p.start(k + 1).unwrap();
        prop_assert!(start.0 <= day && day < next.0);
    }
}

#[test]
fn a_small_shop_by_hand() {
    // Three January customers and one in February; as of 1997-03-15.
    let events = [
        ev(1, d(1997, 1, 5), 10.00),
        ev(1, d(1997, 1, 20), 5.50),
        ev(1, d(1997, 3, 2), 7.25),
        ev(2, d(1997, 1, 9), 20.00),
        ev(2, d(1997, 2, 1), 1.00),
        ev(3, d(1997, 1, 31), 3.00),
        ev(4, d(1997, 2, 14), 8.00),
        // After as-of: ignored.
        ev(4, d(1997, 3, 20), 100.00),
    ];
    let cells = retention(&events, 2, &opts(Period::Month, 12, d(1997, 3, 15))).unwrap();
    let jan: Vec<&Cell> = cells
        .iter()
        .filter(|c| c.cohort_start == d(1997, 1, 1))
        .collect();
    let feb: Vec<&Cell> = cells
        .iter()
        .filter(|c| c.cohort_start == d(1997, 2, 1))
        .collect();
    // Every started period, zeros included; none in the future.
    assert_eq!(jan.len(), 3);
    assert_eq!(feb.len(), 2);
    assert_eq!(jan[0].cohort_size, 3);
    assert_eq!((jan[0].active, jan[0].orders, jan[0].revenue), (3, 4, 3850));
    assert_eq!((jan[1].active, jan[1].orders, jan[1].revenue), (1, 1, 100));
    assert_eq!((jan[2].active, jan[2].orders, jan[2].revenue), (1, 1, 725));
    assert_eq!(jan[2].revenue_cumulative, 3850 + 100 + 725);
    assert!((jan[1].retention() - 1.0 / 3.0).abs() < 1e-15);
    assert!((jan[1].revenue_retention().unwrap() - 100.0 / 3850.0).abs() < 1e-15);
    assert_eq!((feb[1].active, feb[1].orders, feb[1].revenue), (0, 0, 0));
    // January and February have ended by March 15; March has not.
    assert!(jan[0].is_complete && jan[1].is_complete && !jan[2].is_complete);
    assert!(feb[0].is_complete && !feb[1].is_complete);
    // The first cohort holds the earliest order: it may be left-censored.
    assert!(jan.iter().all(|c| c.is_left_censored));
    assert!(feb.iter().all(|c| !c.is_left_censored));
    // A data start before it clears that.
    let mut o = opts(Period::Month, 12, d(1997, 3, 15));
    o.data_start = Some(d(1996, 12, 1));
    let cells = retention(&events, 2, &o).unwrap();
    assert!(cells.iter().all(|c| !c.is_left_censored));

    // The last day of a period completes it.
    let cells = retention(&events, 2, &opts(Period::Month, 12, d(1997, 2, 28))).unwrap();
    assert!(
        cells
            .iter()
            .filter(|c| c.cohort_start == d(1997, 2, 1))
            .all(|c| c.is_complete)
    );
}

#[test]
fn recurring_cohorts_and_on_or_after() {
    let events = [
        ev(1, d(2011, 1, 3), 1.0),
        ev(1, d(2011, 3, 3), 1.0),
        ev(2, d(2011, 2, 3), 1.0),
        ev(2, d(2011, 3, 3), 1.0),
    ];
    let mut o = opts(Period::Month, 3, d(2011, 6, 30));
    o.kind = Kind::Recurring;
    let cells = retention(&events, 2, &o).unwrap();
    // Customer 1 is in the January and March cohorts, customer 2 in February and March.
    let size = |m: u32| {
        cells
            .iter()
            .find(|c| c.cohort_start == d(2011, m, 1))
            .unwrap()
            .cohort_size
    };
    assert_eq!((size(1), size(2), size(3)), (1, 1, 2));
    // January's customer skipped February: absent at 1, present at 2.
    let jan: Vec<u64> = cells
        .iter()
        .filter(|c| c.cohort_start == d(2011, 1, 1))
        .map(|c| c.active)
        .collect();
    assert_eq!(jan, vec![1, 0, 1, 0]);
    // On or after: present at 1 too, since they came back at 2.
    o.cumulative = true;
    let cells = retention(&events, 2, &o).unwrap();
    let jan: Vec<u64> = cells
        .iter()
        .filter(|c| c.cohort_start == d(2011, 1, 1))
        .map(|c| c.active)
        .collect();
    assert_eq!(jan, vec![1, 1, 1, 0]);
    // The horizon of the January cohort (to April) has ended by June 30; March's (to June) too.
    assert!(cells.iter().all(|c| c.is_complete));
    o.as_of = d(2011, 6, 29);
    let cells = retention(&events, 2, &o).unwrap();
    assert!(cells.iter().any(|c| !c.is_complete));
}

#[test]
fn too_many_cells_is_refused() {
    let events: Vec<Event> = (0..2000).map(|i| ev(i, Day(i as i32), 1.0)).collect();
    let o = opts(Period::Day, 1000, Day(3000));
    assert!(matches!(
        retention(&events, 2, &o),
        Err(CohortError::TooManyCells(_))
    ));
}

/// The definitions, computed the slow and obvious way: for every cohort, period number and
/// customer, look at their orders.
fn brute_force(events: &[Event], scale: u32, o: &Options) -> Vec<(Day, u32, u64, u64, u64, i128)> {
    let p = o.period;
    let seen: Vec<&Event> = events.iter().filter(|e| e.day <= o.as_of.0).collect();
    let mut users: Vec<i64> = seen.iter().map(|e| e.user).collect();
    users.sort_unstable();
    users.dedup();
    let periods_of = |u: i64| -> Vec<i64> {
        let mut v: Vec<i64> = seen
            .iter()
            .filter(|e| e.user == u)
            .map(|e| p.index(Day(e.day)))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let mut cohorts: Vec<i64> = users
        .iter()
        .flat_map(|&u| {
            let ps = periods_of(u);
            match o.kind {
                Kind::FirstTime => vec![ps[0]],
                Kind::Recurring => ps,
            }
        })
        .collect();
    cohorts.sort_unstable();
    cohorts.dedup();
    let last = p.index(o.as_of);
    let mut out = Vec::new();
    for &c in &cohorts {
        let members: Vec<i64> = users
            .iter()
            .copied()
            .filter(|&u| {
                let ps = periods_of(u);
                match o.kind {
                    Kind::FirstTime => ps[0] == c,
                    Kind::Recurring => ps.contains(&c),
                }
            })
            .collect();
        for n in 0..=o.max_periods {
            let k = c + i64::from(n);
            if k > last {
                break;
            }
            let mut active = 0;
            let mut orders = 0;
            let mut revenue = 0i128;
            for &u in &members {
                let ps = periods_of(u);
                let here = if o.cumulative {
                    ps.iter()
                        .any(|&x| x >= k && x <= c + i64::from(o.max_periods))
                } else {
                    ps.contains(&k)
                };
                active += u64::from(here);
                for e in seen
                    .iter()
                    .filter(|e| e.user == u && p.index(Day(e.day)) == k)
                {
                    orders += 1;
                    revenue += (e.amount * 10f64.powi(scale as i32)).round() as i128;
                }
            }
            out.push((
                p.start(c).unwrap(),
                n,
                members.len() as u64,
                active,
                orders,
                revenue,
            ));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn equals_the_definitions_done_by_hand(
        orders in prop::collection::vec((0i64..12, 0i32..400, 1u32..100_000), 1..80),
        which in 0usize..4,
        recurring in any::<bool>(),
        cumulative in any::<bool>(),
        max_periods in 0u32..8,
        as_of in 100i32..420,
    ) {
        let events: Vec<Event> = orders
            .iter()
            .map(|&(u, day, cents)| Event { user: u, day: 4000 + day, amount: f64::from(cents) / 100.0 })
            .collect();
        let o = Options {
            period: [Period::Day, Period::Week, Period::Month, Period::Quarter][which],
            max_periods,
            as_of: Day(4000 + as_of),
            kind: if recurring { Kind::Recurring } else { Kind::FirstTime },
            cumulative,
            data_start: None,
        };
        let got: Vec<(Day, u32, u64, u64, u64, i128)> = retention(&events, 2, &o)
            .unwrap()
            .iter()
            .map(|c| (c.cohort_start, c.period_number, c.cohort_size, c.active, c.orders, c.revenue))
            .collect();
        prop_assert_eq!(got, brute_force(&events, 2, &o));
    }
}

#[test]
fn the_summary_weighs_complete_uncensored_cells() {
    let cell = |start: Day, size, n, active, complete, censored| Cell {
        cohort_start: start,
        cohort_size: size,
        period_number: n,
        active,
        orders: active,
        revenue: 0,
        revenue_first: 0,
        revenue_cumulative: 0,
        is_complete: complete,
        is_left_censored: censored,
    };
    let cells = [
        cell(Day(0), 1000, 1, 500, true, true),
        cell(Day(31), 100, 1, 20, true, false),
        cell(Day(59), 300, 1, 30, true, false),
        cell(Day(90), 50, 1, 40, false, false),
    ];
    let s = summary(&cells, false);
    assert_eq!(s.len(), 1);
    assert_eq!((s[0].cohorts, s[0].customers, s[0].active), (2, 400, 50));
    assert!((s[0].weighted - 50.0 / 400.0).abs() < 1e-15);
    assert!((s[0].simple - (0.2 + 0.1) / 2.0).abs() < 1e-15);
    let s = summary(&cells, true);
    assert_eq!(s[0].cohorts, 3);
}
