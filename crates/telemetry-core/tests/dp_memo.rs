//! Memoisation: determinism per secret, independence across secrets, and the marginal distribution over
//! secrets equal to the mechanism's.
// Std's float functions are fine here: a test is not a host (clippy.toml says why they are not
// in the library).
#![allow(clippy::disallowed_methods)]

#[path = "dp_stats.rs"]
mod dp_stats;

use std::time::Duration;

use dp_stats::{Z, assert_chi2, binomial_z, discrete_laplace_pmf, integer_bins};
use rand::rngs::SmallRng;
use rand::{RngCore as _, SeedableRng as _};
use telemetry_core::dp::Epsilon;
use telemetry_core::dp::mechanism::{
    BoundedInteger, BucketedDuration, DurationBuckets, KaryRandomizedResponse, RandomizedResponse,
};
use telemetry_core::dp::memo::{Memoizer, daily_id};

fn secrets(seed: u64, n: usize) -> Vec<[u8; 32]> {
    let mut r = SmallRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let mut s = [0u8; 32];
            r.fill_bytes(&mut s);
            s
        })
        .collect()
}

fn ln3() -> Epsilon {
    Epsilon::from_f64(3f64.ln()).unwrap()
}

#[test]
fn same_secret_same_answer_across_calls_and_constructions() {
    let rr = RandomizedResponse::new(ln3());
    let krr = KaryRandomizedResponse::new(6, ln3()).unwrap();
    let bint = BoundedInteger::new(0, 100, ln3()).unwrap();
    let dur = BucketedDuration::new(DurationBuckets::default_log_scale(), ln3()).unwrap();
    for secret in secrets(1, 20) {
        let m = Memoizer::new(&secret);
        let first = (
            m.randomize("e", "flag", &rr, true),
            m.randomize("e", "kind", &krr, 4),
            m.randomize("e", "count", &bint, 42),
            m.randomize("e", "took", &dur, Duration::from_millis(1234)),
        );
        for _ in 0..50 {
            let again = Memoizer::new(&secret);
            let m2 = m.clone();
            assert_eq!(first.0, again.randomize("e", "flag", &rr, true));
            assert_eq!(first.1, again.randomize("e", "kind", &krr, 4));
            assert_eq!(first.2, m2.randomize("e", "count", &bint, 42));
            assert_eq!(
                first.3,
                m2.randomize("e", "took", &dur, Duration::from_millis(1234))
            );
        }
    }
}

#[test]
fn effective_inputs_share_answers() {
    // Values the mechanism treats identically must share one answer (else re-reporting leaks fresh samples).
    let bint = BoundedInteger::new(0, 10, ln3()).unwrap();
    let krr = KaryRandomizedResponse::new(4, ln3()).unwrap();
    let dur = BucketedDuration::new(DurationBuckets::new(vec![100, 1000]).unwrap(), ln3()).unwrap();
    for secret in secrets(2, 200) {
        let m = Memoizer::new(&secret);
        assert_eq!(
            m.randomize("e", "n", &bint, 10),
            m.randomize("e", "n", &bint, 1_000_000)
        );
        assert_eq!(
            m.randomize("e", "n", &bint, 0),
            m.randomize("e", "n", &bint, i64::MIN)
        );
        assert_eq!(
            m.randomize("e", "k", &krr, 4),
            m.randomize("e", "k", &krr, u32::MAX)
        );
        assert_eq!(
            m.randomize("e", "d", &dur, Duration::from_millis(101)),
            m.randomize("e", "d", &dur, Duration::from_millis(999))
        );
    }
}

#[test]
fn streams_are_separated_by_every_input() {
    use rand::RngCore as _;
    let rr = RandomizedResponse::new(ln3());
    let rr2 = RandomizedResponse::new(Epsilon::from_f64(1.0).unwrap());
    let m = Memoizer::new(&[3u8; 32]);
    let word = |event: &str, field: &str, mech: &RandomizedResponse, v: bool| {
        m.rng_for(event, field, mech, &v).next_u64()
    };
    let base = word("ev", "f", &rr, true);
    assert_ne!(base, word("ev", "g", &rr, true), "field");
    assert_ne!(base, word("ew", "f", &rr, true), "event");
    assert_ne!(base, word("ev", "f", &rr, false), "value");
    assert_ne!(base, word("ev", "f", &rr2, true), "epsilon");
    // Length prefixes: moving a byte between event and field is a different input.
    assert_ne!(word("ab", "c", &rr, true), word("a", "bc", &rr, true));
    assert_ne!(
        base,
        Memoizer::new(&[4u8; 32])
            .rng_for("ev", "f", &rr, &true)
            .next_u64(),
        "secret"
    );
}

#[test]
fn different_secrets_give_different_answer_sequences() {
    // 256 k-RR answers (k = 8, ε = ln 3) per secret; two independent secrets agree on a given answer with
    // probability p² + (1 − p)²/7 ≈ 0.11, so identical sequences (≈ 0.11^256) mean the secret is ignored.
    let krr = KaryRandomizedResponse::new(8, ln3()).unwrap();
    let seqs: Vec<Vec<u32>> = secrets(4, 64)
        .iter()
        .map(|s| {
            let m = Memoizer::new(s);
            (0..256u32)
                .map(|i| m.randomize("ev", &format!("field{i}"), &krr, i % 8))
                .collect()
        })
        .collect();
    for i in 0..seqs.len() {
        for j in i + 1..seqs.len() {
            assert_ne!(
                seqs[i], seqs[j],
                "secrets {i} and {j} gave identical answers"
            );
            let agree = seqs[i].iter().zip(&seqs[j]).filter(|(a, b)| a == b).count() as u64;
            // Agreement ≈ Binomial(256, p² + (1−p)²/7) — not ≈ 1 as with a shared stream.
            let e = 3.0f64;
            let p = e / (e + 7.0);
            let q = p * p + (1.0 - p) * (1.0 - p) / 7.0;
            let z = binomial_z(agree, 256, q);
            assert!(
                z < 7.0,
                "secrets {i}, {j}: {agree}/256 answers agree, z = {z:.1}"
            );
        }
    }
}

#[test]
fn marginal_over_secrets_matches_the_mechanism() {
    let n = 30_000;
    let keys = secrets(5, n);

    // RR: fraction truthful ~ p = 3/4 (up to ε's 2^-20 rounding).
    let e = ln3();
    let rr = RandomizedResponse::new(e);
    let truthful = keys
        .iter()
        .filter(|s| Memoizer::new(s).randomize("e", "b", &rr, true))
        .count() as u64;
    let z = binomial_z(truthful, n as u64, rr.truth_probability());
    assert!(
        z.abs() < Z,
        "memoised RR: {truthful}/{n} truthful, z = {z:.2}"
    );

    // k-RR: exact pmf, df = 3 (critical value at 1e-6 ≈ 30.66).
    let krr = KaryRandomizedResponse::new(4, e).unwrap();
    let p = krr.keep_probability();
    let mut counts = [0u64; 4];
    for s in &keys {
        counts[Memoizer::new(s).randomize("e", "k", &krr, 1) as usize] += 1;
    }
    assert_chi2(
        "memoised k-RR",
        &counts,
        &[(1.0 - p) / 3.0, p, (1.0 - p) / 3.0, (1.0 - p) / 3.0],
    );

    // Bounded integer: output − clamped value ~ discrete Laplace(10/1).
    let bint = BoundedInteger::new(0, 10, Epsilon::from_f64(1.0).unwrap()).unwrap();
    let noise: Vec<i64> = keys
        .iter()
        .map(|s| Memoizer::new(s).randomize("e", "n", &bint, 4) - 4)
        .collect();
    let pmf = |x: i64| discrete_laplace_pmf(x, 10.0);
    let (lo, hi, probs) = integer_bins(&pmf, 0, n as u64, 40);
    assert_chi2(
        "memoised bounded integer",
        &dp_stats::bin_counts(&noise, lo, hi),
        &probs,
    );

    // Answers for two fields of the same secret are independent: the 2×2 table of (field a, field b)
    // truthfulness matches p², p(1−p), (1−p)p, (1−p)² (df = 3).
    let mut table = [0u64; 4];
    for s in &keys {
        let m = Memoizer::new(s);
        let a = m.randomize("e", "a", &rr, true);
        let b = m.randomize("e", "b", &rr, true);
        table[usize::from(a) * 2 + usize::from(b)] += 1;
    }
    let p = rr.truth_probability();
    let q = 1.0 - p;
    assert_chi2(
        "independence of fields",
        &table,
        &[q * q, q * p, p * q, p * p],
    );
}

#[test]
fn daily_ids_are_unlinkable_across_days_and_installs() {
    let s = [9u8; 32];
    let days = ["2025-01-30", "2025-01-31", "2025-02-01"];
    let ids: Vec<String> = days.iter().map(|d| daily_id(&s, d)).collect();
    assert_eq!(ids[0].len(), 32);
    assert_ne!(ids[0], ids[1]);
    assert_ne!(ids[1], ids[2]);
    // Stable within a day, different for another install.
    assert_eq!(ids[1], daily_id(&s, days[1]));
    assert_ne!(ids[1], daily_id(&[8u8; 32], days[1]));
    // No visible relation: consecutive days differ in about half of their 128 bits.
    let bits = |a: &str, b: &str| -> u32 {
        let x = u128::from_str_radix(a, 16).unwrap();
        let y = u128::from_str_radix(b, 16).unwrap();
        (x ^ y).count_ones()
    };
    for w in ids.windows(2) {
        let d = bits(&w[0], &w[1]);
        assert!((34..=94).contains(&d), "daily ids differ in only {d} bits");
    }
}

#[test]
fn memo_stream_is_deterministic_past_its_head() {
    use rand::RngCore as _;
    // The first 32 bytes come from HMAC, the rest from ChaCha20: both parts replay identically and differ
    // between inputs.
    let rr = RandomizedResponse::new(ln3());
    let m = Memoizer::new(&[5u8; 32]);
    let draw = |v: bool| -> Vec<u64> {
        let mut s = m.rng_for("e", "f", &rr, &v);
        let mut out: Vec<u64> = (0..3).map(|_| s.next_u64()).collect();
        out.push(u64::from(s.next_u32()));
        out.extend((0..20).map(|_| s.next_u64()));
        out
    };
    let a = draw(true);
    assert_eq!(a, draw(true));
    assert_ne!(a[5..], draw(false)[5..]);
    let mut buf = [0u8; 13];
    m.rng_for("e", "f", &rr, &true).fill_bytes(&mut buf);
    assert_ne!(buf, [0u8; 13]);
}
