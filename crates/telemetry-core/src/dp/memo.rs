//! Memoisation (RAPPOR's permanent randomised response) and the daily identifier.
//!
//! # Why memoise
//! If a user reports the same true value every day with fresh noise, the server can average the reports and
//! recover the value: the privacy loss grows with every report. RAPPOR (Erlingsson, Pihur & Korolova 2014)
//! fixes this with *permanent randomised response*: the randomised answer for a given true value is drawn
//! once and then reused, so any number of repeats reveals no more than one report (ε per distinct value).
//!
//! # How
//! We do not store answers: the answer is a deterministic function of a keyed PRF. For each
//! (event, field, mechanism parameters, *effective* true value) we compute
//! `seed = HMAC-SHA-256(install secret, encoding)` and run the exact mechanism on a [`MemoStream`]: the 32
//! seed bytes first, then SHA-256 of the seed in counter mode. Same secret + same inputs → same answer; a different secret
//! (another install, or after `disable` deleted the secret) → an independent answer, because HMAC-SHA-256 is a
//! PRF. Without the secret the answers are indistinguishable from fresh mechanism outputs.
//!
//! The stream is our own, fixed construction (not `rand::rngs::StdRng`, which is documented as not
//! value-stable across `rand` versions): a silent change would re-randomise every user's answers and so leak
//! a second sample of each.
//!
//! The encoding is `"telemetry-core/dp/memo/v1"`, then the event and field names (length-prefixed), the
//! mechanism's descriptor (tag and parameters — a changed ε, domain or range is a new mechanism with new
//! answers, charged anew by the ledger) and the effective input (after clamping, bucketing or the domain
//! check: every value above a bounded integer's `max` shares `max`'s answer). All parts are length-prefixed or
//! fixed-width, so the encoding is injective.
//!
//! # Why no period in the key
//! The day is deliberately *not* part of the PRF input. With it, every day would bring a fresh independent
//! answer, and averaging across days would recover the value — exactly what memoisation exists to prevent;
//! the per-day ledger cap would only slow that down. The cost is RAPPOR's known trade-off: a fixed answer is
//! stable across days, so a combination of many memoised fields could act as a quasi-identifier linking the
//! (otherwise unlinkable) daily ids. That is bounded by the install secret's lifetime: `disable` deletes it and a
//! later `enable` creates a new one, which re-randomises everything. A deployment that wants shorter linkage can
//! rotate the install secret on a schedule; a per-report "instantaneous" layer (RAPPOR's IRR) can be added
//! on top of these answers later without changing them.

use std::fmt;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac as _};
use rand::RngCore;
use sha2::{Digest as _, Sha256};

use super::mechanism::Mechanism;

type HmacSha256 = Hmac<Sha256>;

/// Describes the memoisation for the payload's `privacy.dp` section.
pub const MEMO_PRF: &str = "hmac-sha256+sha256-ctr/v1";

const MEMO_DOMAIN: &[u8] = b"telemetry-core/dp/memo/v1";
const MEMO_CTR_DOMAIN: &[u8] = b"tdp-memo-ctr1";
const DAILY_ID_DOMAIN: &[u8] = b"telemetry-core/daily-id/v1";
const LEDGER_KEY_DOMAIN: &[u8] = b"telemetry-core/ledger-key/v1";

/// HMAC-SHA-256 keyed with a 32-byte secret.
///
/// Built from a 64-byte zero-padded block, which is what HMAC does with a short key anyway, so this equals
/// `new_from_slice(secret)` but has no error path.
fn keyed_mac(secret: &[u8; 32]) -> HmacSha256 {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(secret);
    <HmacSha256 as KeyInit>::new(&block.into())
}

/// Writes a mechanism's parameters and effective input into the memo PRF, in an injective encoding.
///
/// Handed to [`Mechanism::write_descriptor`] and [`Mechanism::write_memo_input`]; it streams straight into the
/// HMAC, so memoising allocates nothing.
pub struct MemoEncoder<'a> {
    mac: &'a mut HmacSha256,
}

impl MemoEncoder<'_> {
    /// Appends a fixed-width 64-bit word (big-endian).
    pub fn word(&mut self, word: u64) {
        self.mac.update(&word.to_be_bytes());
    }

    /// Appends a byte string, prefixed with its length.
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.word(bytes.len() as u64);
        self.mac.update(bytes);
    }
}

impl fmt::Debug for MemoEncoder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MemoEncoder { .. }")
    }
}

/// Derives memoised randomised answers from the install secret.
///
/// Build one per install secret (keying HMAC costs two SHA-256 blocks) and keep it next to the recording
/// pipeline; each [`Memoizer::randomize`] then costs two SHA-256 compressions, one more per further 32 random
/// bytes the sampler needs, and the exact sampler. `Debug` does not print the secret.
#[derive(Clone)]
pub struct Memoizer {
    mac: HmacSha256,
}

impl Memoizer {
    /// A memoizer keyed by the install secret (32 random bytes created at `enable`, never sent anywhere).
    pub fn new(secret: &[u8; 32]) -> Self {
        Self {
            mac: keyed_mac(secret),
        }
    }

    /// The deterministic random stream for one (event, field, mechanism, effective input).
    pub fn rng_for<M: Mechanism>(
        &self,
        event: &str,
        field: &str,
        mechanism: &M,
        input: &M::Input,
    ) -> MemoStream {
        let mut mac = self.mac.clone();
        mac.update(MEMO_DOMAIN);
        {
            let mut enc = MemoEncoder { mac: &mut mac };
            enc.bytes(event.as_bytes());
            enc.bytes(field.as_bytes());
            mechanism.write_descriptor(&mut enc);
            mechanism.write_memo_input(input, &mut enc);
        }
        let seed: [u8; 32] = mac.finalize().into_bytes().into();
        MemoStream::new(seed)
    }

    /// The memoised answer, with the key under which the ledger charges it: equal for two calls
    /// iff they give the same memoised answer (same event, field, mechanism and effective input), so
    /// a repeat is charged once. The key is one-way from the PRF output: the ledger, which stores
    /// keys, reveals neither the values nor the answers' randomness.
    pub fn randomize_keyed<M: Mechanism>(
        &self,
        event: &str,
        field: &str,
        mechanism: &M,
        input: M::Input,
    ) -> (M::Output, u64) {
        let mut rng = self.rng_for(event, field, mechanism, &input);
        let mut h = Sha256::new();
        h.update(LEDGER_KEY_DOMAIN);
        h.update(rng.key);
        let digest: [u8; 32] = h.finalize().into();
        let mut key = [0u8; 8];
        key.copy_from_slice(&digest[..8]);
        (
            mechanism.randomize(input, &mut rng),
            u64::from_le_bytes(key),
        )
    }

    /// The memoised randomised answer of `mechanism` for `input` in `event.field`.
    ///
    /// Deterministic in (secret, event, field, mechanism parameters, effective input); distributed exactly as
    /// `mechanism.randomize(input, fresh_rng)` over a uniformly random secret.
    pub fn randomize<M: Mechanism>(
        &self,
        event: &str,
        field: &str,
        mechanism: &M,
        input: M::Input,
    ) -> M::Output {
        let mut rng = self.rng_for(event, field, mechanism, &input);
        mechanism.randomize(input, &mut rng)
    }
}

/// The memoised random stream: the 32-byte HMAC output first, then SHA-256 in counter mode.
///
/// The first 32 bytes are the HMAC-SHA-256 output `K` itself (a PRF output, and enough for a boolean
/// randomised response in most cases). If a sampler needs more, block i ≥ 1 is
/// SHA-256(`"tdp-memo-ctr1"` ‖ K ‖ i as 8 big-endian bytes) — one compression per 32 bytes (the input fits a
/// single 64-byte block). K stays secret (an answer reveals at most a few bits of it), so the blocks are
/// unpredictable and independent for practical purposes (SHA-256 keyed by a secret prefix of fixed length,
/// as in HMAC's inner hash). We use this rather than seeding ChaCha20 because `rand_chacha` computes four
/// 64-byte blocks at once, which alone would take a memoised answer past the `record` budget.
/// Words are read little-endian; the layout is part of [`MEMO_PRF`] and must not change silently.
pub struct MemoStream {
    key: [u8; 32],
    block: [u8; 32],
    used: usize,
    counter: u64,
}

impl MemoStream {
    fn new(key: [u8; 32]) -> Self {
        Self {
            key,
            block: key,
            used: 0,
            counter: 0,
        }
    }

    fn refill(&mut self) {
        self.counter = self.counter.wrapping_add(1);
        let mut h = Sha256::new();
        h.update(MEMO_CTR_DOMAIN);
        h.update(self.key);
        h.update(self.counter.to_be_bytes());
        self.block = h.finalize().into();
        self.used = 0;
    }

    fn take<const N: usize>(&mut self) -> [u8; N] {
        if self.used + N > self.block.len() {
            self.refill();
        }
        let mut w = [0u8; N];
        w.copy_from_slice(&self.block[self.used..self.used + N]);
        self.used += N;
        w
    }
}

impl RngCore for MemoStream {
    fn next_u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take::<4>())
    }

    fn next_u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take::<8>())
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let w = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
    }
}

impl fmt::Debug for MemoStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MemoStream { .. }")
    }
}

impl fmt::Debug for Memoizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Memoizer { .. }")
    }
}

/// The daily identifier: HMAC-SHA-256(install secret, domain ‖ day), first 16 bytes, lower-case hex (32 chars).
///
/// Lets the server count distinct installs per day without being able to link one install's days: without the
/// secret, the ids of two different days are independent random strings (PRF security). `day` is the
/// coarsened date the payload's `period.day` carries (e.g. `"2025-01-31"`); any string is accepted, and two
/// different strings give unrelated ids.
pub fn daily_id(secret: &[u8; 32], day: &str) -> String {
    let mut mac = keyed_mac(secret);
    mac.update(DAILY_ID_DOMAIN);
    mac.update(&(day.len() as u64).to_be_bytes());
    mac.update(day.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(32);
    for byte in &digest[..16] {
        out.push(hex_digit(byte >> 4));
        out.push(hex_digit(byte & 0x0f));
    }
    out
}

fn hex_digit(nibble: u8) -> char {
    char::from(if nibble < 10 {
        b'0' + nibble
    } else {
        b'a' + nibble - 10
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_mac_matches_new_from_slice() {
        let secret = [0x5au8; 32];
        let mut a = keyed_mac(&secret);
        let mut b = <HmacSha256 as hmac::Mac>::new_from_slice(&secret).unwrap();
        a.update(b"x");
        b.update(b"x");
        assert_eq!(a.finalize().into_bytes(), b.finalize().into_bytes());
    }

    #[test]
    fn daily_id_shape_and_determinism() {
        let s = [1u8; 32];
        let id = daily_id(&s, "2025-01-31");
        assert_eq!(id.len(), 32);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(id, daily_id(&s, "2025-01-31"));
        assert_ne!(id, daily_id(&s, "2025-02-01"));
        assert_ne!(id, daily_id(&[2u8; 32], "2025-01-31"));
        // Memo debug output never shows key material.
        assert_eq!(format!("{:?}", Memoizer::new(&s)), "Memoizer { .. }");
    }

    #[test]
    fn daily_id_known_answer() {
        // HMAC-SHA-256 over the documented encoding, computed independently (Python hmac/hashlib).
        let id = daily_id(&[0u8; 32], "2025-01-31");
        assert_eq!(id, KNOWN_DAILY_ID);
    }

    const KNOWN_DAILY_ID: &str = "84fe359df1b451f3e0a19f44cf1dd7b5";
}
