use super::data::Interactions;
use super::evaluate::{Mode, Protocol, Spec, evaluate};
use super::metrics::at_k;
use super::models::{Algorithm, Weighting, popularity, top, train};
use crate::items::ItemLine;

fn line(user: i64, day: i32, order: i64, product: i64) -> ItemLine {
    ItemLine {
        user,
        day,
        order,
        product,
        quantity: 1.0,
        unit_price: 1.0,
    }
}

/// Users 1-4 and products 10, 20, 30: 1 bought 10 and 20 (20 in two orders), 2 bought 10 and
/// 30, 3 bought 10, 20 and 30, 4 bought 20.
fn shop() -> Vec<ItemLine> {
    vec![
        line(1, 0, 1, 10),
        line(1, 0, 1, 20),
        line(1, 5, 2, 20),
        line(2, 1, 3, 10),
        line(2, 1, 3, 30),
        line(3, 2, 4, 10),
        line(3, 2, 4, 20),
        line(3, 2, 4, 30),
        line(4, 3, 5, 20),
        // The same product twice in one order is one order.
        line(4, 3, 5, 20),
    ]
}

#[test]
fn interactions_count_distinct_orders_and_buyers() {
    let d = Interactions::build(&shop(), None, 100);
    assert_eq!(d.items, vec![10, 20, 30]);
    assert_eq!(d.users, vec![1, 2, 3, 4]);
    assert_eq!(d.rows[0], vec![(0, 1), (1, 2)]);
    assert_eq!(d.rows[3], vec![(1, 1)]);
    assert_eq!(d.buyers, vec![3, 3, 2]);
    // A window.
    let d = Interactions::build(&shop(), Some(2), 4);
    assert_eq!(d.users, vec![3, 4]);
}

#[test]
fn cosine_similarity_is_co_buyers_over_the_root_of_buyers() {
    let d = Interactions::build(&shop(), None, 100);
    let m = train(
        &d,
        vec![0.0; 3],
        Algorithm::ItemKnn {
            weighting: Weighting::Cosine,
            k: 5,
        },
        10,
    )
    .unwrap();
    // Products 10 and 20 share buyers 1 and 3: 2 / sqrt(3 × 3); 10 and 30 share 2 and 3: 2 /
    // sqrt(3 × 2); 20 and 30 share 3: 1 / sqrt(3 × 2).
    let s = m.similar(0, 5);
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].0, 2);
    assert!((s[0].1 - 2.0 / 6f64.sqrt()).abs() < 1e-12);
    assert_eq!(s[1].0, 1);
    assert!((s[1].1 - 2.0 / 3.0).abs() < 1e-12);
    let s = m.similar(1, 5);
    assert!((s[0].1 - 2.0 / 3.0).abs() < 1e-12 && s[0].0 == 0);
    assert!((s[1].1 - 1.0 / 6f64.sqrt()).abs() < 1e-12 && s[1].0 == 2);
    // K keeps the best.
    let m1 = train(
        &d,
        vec![0.0; 3],
        Algorithm::ItemKnn {
            weighting: Weighting::Cosine,
            k: 1,
        },
        10,
    )
    .unwrap();
    assert_eq!(m1.similar(0, 5).len(), 1);
    // Scores: user 4 (bought 20) gets S[20, ·].
    let mut out = vec![0.0; 3];
    m.scores(d.row_of(4), &mut out);
    assert!((out[0] - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(out[1], 0.0);
    assert!((out[2] - 1.0 / 6f64.sqrt()).abs() < 1e-12);
}

#[test]
fn bm25_weights_follow_the_formula() {
    let d = Interactions::build(&shop(), None, 100);
    let (k1, b) = (1.2, 0.75);
    let m = train(
        &d,
        vec![0.0; 3],
        Algorithm::ItemKnn {
            weighting: Weighting::Bm25 { k1, b },
            k: 5,
        },
        10,
    )
    .unwrap();
    // Counts c[u][i] (distinct orders), item lengths and user idfs, by hand.
    let c = [
        [1.0, 2.0, 0.0],
        [1.0, 0.0, 1.0],
        [1.0, 1.0, 1.0],
        [0.0, 1.0, 0.0],
    ];
    let len = [3.0, 4.0, 2.0];
    let avg: f64 = len.iter().sum::<f64>() / 3.0;
    let items_of: [f64; 4] = [2.0, 2.0, 3.0, 1.0];
    let w = |u: usize, i: usize| -> f64 {
        if c[u][i] == 0.0 {
            return 0.0;
        }
        let idf = 3f64.ln() - (1.0 + items_of[u]).ln();
        c[u][i] * (k1 + 1.0) / (k1 * ((1.0 - b) + b * len[i] / avg) + c[u][i]) * idf
    };
    let s = |i: usize, j: usize| (0..4).map(|u| w(u, i) * w(u, j)).sum::<f64>();
    for i in 0..3u32 {
        for (j, v) in m.similar(i, 5) {
            assert!((v - s(i as usize, j as usize)).abs() < 1e-12, "{i} {j}");
        }
    }
}

/// The inverse of a 3 × 3 matrix by cofactors, independent of faer.
#[allow(clippy::needless_range_loop)]
fn inverse3(a: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let det = a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1])
        - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
        + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
    let mut inv = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            // The cofactor of (j, i): rows without j, columns without i.
            let r0: Vec<usize> = [0, 1, 2].iter().filter(|&&r| r != j).copied().collect();
            let c: Vec<usize> = [0, 1, 2].iter().filter(|&&c| c != i).copied().collect();
            let minor = a[r0[0]][c[0]] * a[r0[1]][c[1]] - a[r0[0]][c[1]] * a[r0[1]][c[0]];
            let sign = if (i + j) % 2 == 0 { 1.0 } else { -1.0 };
            inv[i][j] = sign * minor / det;
        }
    }
    inv
}

#[test]
fn ease_is_the_closed_form() {
    let d = Interactions::build(&shop(), None, 100);
    let lambda = 2.0;
    let m = train(&d, vec![0.0; 3], Algorithm::Ease { lambda }, 10).unwrap();
    // G = XᵀX + λI with X binary: co-buyer counts.
    let g = [
        [3.0 + lambda, 2.0, 2.0],
        [2.0, 3.0 + lambda, 1.0],
        [2.0, 1.0, 2.0 + lambda],
    ];
    let p = inverse3(g);
    let b = |i: usize, j: usize| if i == j { 0.0 } else { -p[i][j] / p[j][j] };
    // User 2 bought 10 and 30: scores are rows 0 and 2 of B summed.
    let mut out = vec![0.0; 3];
    m.scores(d.row_of(2), &mut out);
    for (j, o) in out.iter().enumerate() {
        assert!((o - (b(0, j) + b(2, j))).abs() < 1e-12, "{j}");
    }
    // The hybrid adds w × own orders.
    let h = train(
        &d,
        vec![0.0; 3],
        Algorithm::Hybrid {
            lambda,
            weight: 0.2,
        },
        10,
    )
    .unwrap();
    let mut hout = vec![0.0; 3];
    h.scores(d.row_of(1), &mut hout);
    m.scores(d.row_of(1), &mut out);
    assert!((hout[0] - out[0] - 0.2).abs() < 1e-12);
    assert!((hout[1] - out[1] - 0.4).abs() < 1e-12);
    assert!((hout[2] - out[2]).abs() < 1e-12);
    // The cap is a clear refusal.
    assert!(matches!(
        train(&d, vec![0.0; 3], Algorithm::Ease { lambda }, 2),
        Err(super::models::TrainError::TooManyItems { items: 3, cap: 2 })
    ));
}

#[test]
fn popularity_and_buy_again_rank_with_ties_by_product() {
    let d = Interactions::build(&shop(), None, 100);
    let recent = Interactions::build(&shop(), Some(2), 100);
    // Buyers from day 2: 10 by 3; 20 by 1 (day 5), 3, 4; 30 by 3.
    let pop = popularity(&d, &recent);
    assert_eq!(pop, vec![1.0, 3.0, 1.0]);
    let m = train(&d, pop.clone(), Algorithm::Popularity, 10).unwrap();
    let mut out = vec![0.0; 3];
    m.scores(d.row_of(2), &mut out);
    let ranked: Vec<u32> = top(&out, 3, |_| false).iter().map(|t| t.0).collect();
    assert_eq!(ranked, vec![1, 0, 2]);
    let b = train(&d, pop, Algorithm::BuyAgain, 10).unwrap();
    b.scores(d.row_of(2), &mut out);
    let ranked: Vec<u32> = top(&out, 3, |_| false).iter().map(|t| t.0).collect();
    // User 2's own 10 and 30 (one order each, 10 first by product), then 20.
    assert_eq!(ranked, vec![0, 2, 1]);
    // A customer with no history gets popularity.
    b.scores(None, &mut out);
    assert_eq!(out, vec![1.0, 3.0, 1.0]);
    // Skipping what they own.
    let ranked: Vec<u32> = top(&out, 3, |j| j == 1).iter().map(|t| t.0).collect();
    assert_eq!(ranked, vec![0, 2]);
}

#[test]
fn metrics_by_hand() {
    // Relevant 3 and 7; the list hits at ranks 2 and 4.
    let m = at_k(&[1, 3, 5, 7, 9], &[3, 7], 5);
    assert_eq!(m.hit, 1.0);
    assert!((m.precision - 0.4).abs() < 1e-12);
    assert!((m.recall - 1.0).abs() < 1e-12);
    let dcg = 1.0 / 3f64.log2() + 1.0 / 5f64.log2();
    let idcg = 1.0 + 1.0 / 3f64.log2();
    assert!((m.ndcg - dcg / idcg).abs() < 1e-12);
    assert!((m.map - (0.5 + 0.5) / 2.0).abs() < 1e-12);
    // Only the first k count; |relevant| above k caps the ideal.
    let m = at_k(&[1, 3, 5, 7, 9], &[3, 7, 9], 2);
    assert!((m.precision - 0.5).abs() < 1e-12);
    assert!((m.recall - 1.0 / 3.0).abs() < 1e-12);
    assert!((m.ndcg - (1.0 / 3f64.log2()) / (1.0 + 1.0 / 3f64.log2())).abs() < 1e-12);
    assert!((m.map - 0.5 / 2.0).abs() < 1e-12);
    // No hit.
    let m = at_k(&[1, 2], &[3], 2);
    assert_eq!(
        (m.hit, m.precision, m.recall, m.ndcg, m.map),
        (0.0, 0.0, 0.0, 0.0, 0.0)
    );
}

#[test]
fn the_protocol_counts_users_modes_and_cold_start() {
    let mut lines = shop();
    // Test window from day 10: user 1 buys 20 again and 30 (new); user 4 buys 20 again only;
    // user 9 is new; product 40 was never bought before.
    lines.extend([
        line(1, 10, 6, 20),
        line(1, 10, 6, 30),
        line(4, 11, 7, 20),
        line(9, 12, 8, 10),
        line(3, 12, 9, 40),
    ]);
    let protocol = Protocol {
        cutoff: 10,
        end: 20,
        ks: vec![1, 3],
        max_items: 100,
    };
    let e = evaluate(
        &lines,
        &protocol,
        &[
            Spec {
                name: "popularity".into(),
                algorithm: Algorithm::Popularity,
                popularity_days: Some(30),
            },
            Spec {
                name: "buy_again".into(),
                algorithm: Algorithm::BuyAgain,
                popularity_days: None,
            },
        ],
    )
    .unwrap();
    assert_eq!((e.train_users, e.train_items, e.train_pairs), (4, 3, 8));
    assert_eq!((e.test_buyers, e.cold_start_buyers), (4, 1));
    let row = |model: &str, mode: Mode, k: usize| {
        e.rows
            .iter()
            .find(|r| r.model == model && r.mode == mode && r.k == k)
            .unwrap()
            .clone()
    };
    // All mode: users 1, 3 and 4 (3's product 40 is relevant but cannot be recommended).
    assert_eq!(row("popularity", Mode::All, 3).users, 3);
    // New mode: user 1 (30) and user 3 (40); user 4 bought nothing new.
    assert_eq!(row("buy_again", Mode::New, 3).users, 2);
    // Buy-again at 1 in all mode: user 1's top is 20 (two orders): a hit; user 4's is 20: a
    // hit; user 3's is 10: a miss.
    assert!((row("buy_again", Mode::All, 1).metrics.hit - 2.0 / 3.0).abs() < 1e-12);
    // In new mode it cannot recommend what they own: user 1 gets 30 at rank 1.
    assert!((row("buy_again", Mode::New, 1).metrics.hit - 0.5).abs() < 1e-12);
    assert!(row("popularity", Mode::All, 3).coverage > 0.0);
}

#[test]
fn a_stored_model_scores_as_the_trained_one_and_explains_itself() {
    let d = Interactions::build(&shop(), None, 100);
    for algorithm in [
        Algorithm::Hybrid {
            lambda: 2.0,
            weight: 0.2,
        },
        Algorithm::ItemKnn {
            weighting: Weighting::Cosine,
            k: 5,
        },
    ] {
        let m = train(&d, vec![1.0, 3.0, 1.0], algorithm, 10).unwrap();
        // Every neighbour kept: the same scores.
        let stored =
            super::models::Model::from_parts(algorithm, vec![1.0, 3.0, 1.0], m.neighbour_lists(3));
        let (mut a, mut b) = (vec![0.0; 3], vec![0.0; 3]);
        for user in [1, 2, 3, 4] {
            m.scores(d.row_of(user), &mut a);
            stored.scores(d.row_of(user), &mut b);
            for j in 0..3 {
                assert!((a[j] - b[j]).abs() < 1e-12, "{algorithm:?} {user} {j}");
            }
        }
    }
    // Cosine: user 1 (products 10 and 20) gets 30 because of 10 (2/√6) more than 20 (1/√6).
    let m = train(
        &d,
        vec![0.0; 3],
        Algorithm::ItemKnn {
            weighting: Weighting::Cosine,
            k: 5,
        },
        10,
    )
    .unwrap();
    let why = m.explain(d.row_of(1).unwrap(), 2, 3);
    assert_eq!(why.iter().map(|w| w.0).collect::<Vec<_>>(), vec![0, 1]);
    assert!((why[0].1 - 2.0 / 6f64.sqrt()).abs() < 1e-12);
    // Popularity explains nothing; buy-again names the product itself.
    let p = train(&d, vec![0.0; 3], Algorithm::Popularity, 10).unwrap();
    assert!(p.explain(d.row_of(1).unwrap(), 1, 3).is_empty());
    let b = train(&d, vec![0.0; 3], Algorithm::BuyAgain, 10).unwrap();
    assert_eq!(b.explain(d.row_of(1).unwrap(), 1, 3), vec![(1, 2.0)]);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    /// `Model::rank` is `top` over `Model::scores`, for every model, trained or stored (pruned
    /// EASE weights can be negative), with and without a history, skipping owned items or not,
    /// popularity with ties.
    #[test]
    fn rank_is_the_top_of_the_full_scores(
        raw in proptest::collection::vec((0i64..12, 0i64..15, 0i32..20), 1..80),
        pop in proptest::collection::vec(0u8..4, 15),
        k in 1usize..20,
        kept in 1usize..6,
        skip_owned in proptest::bool::ANY,
    ) {
        let lines: Vec<ItemLine> = raw
            .iter()
            .enumerate()
            .map(|(o, &(u, p, d))| line(u, d, o as i64 / 2, p))
            .collect();
        let d = Interactions::build(&lines, None, 100);
        let n = d.n_items();
        let popularity: Vec<f64> = (0..n).map(|j| f64::from(pop[j])).collect();
        let mut scratch = Vec::new();
        for algorithm in [
            Algorithm::Popularity,
            Algorithm::BuyAgain,
            Algorithm::ItemKnn { weighting: Weighting::Cosine, k: kept },
            Algorithm::ItemKnn { weighting: Weighting::Bm25 { k1: 1.2, b: 0.75 }, k: kept },
            Algorithm::Ease { lambda: 0.5 },
            Algorithm::Hybrid { lambda: 0.5, weight: 0.2 },
        ] {
            let m = train(&d, popularity.clone(), algorithm, 100).unwrap();
            let stored = super::models::Model::from_parts(algorithm, popularity.clone(), m.neighbour_lists(kept));
            for model in [&m, &stored] {
                let mut scores = vec![0.0; n];
                for user in std::iter::once(None).chain(d.users.iter().map(|&u| Some(u))) {
                    let row = user.and_then(|u| d.row_of(u));
                    let owned = |j: usize| {
                        skip_owned && row.is_some_and(|r| r.binary_search_by_key(&(j as u32), |x| x.0).is_ok())
                    };
                    model.scores(row, &mut scores);
                    let slow = top(&scores, k, owned);
                    let fast = model.rank(row, k, owned, &mut scratch);
                    proptest::prop_assert_eq!(&fast, &slow, "{:?} user {:?}", algorithm, user);
                    proptest::prop_assert!(scratch.iter().all(|x| *x == 0.0));
                }
            }
        }
    }
}
