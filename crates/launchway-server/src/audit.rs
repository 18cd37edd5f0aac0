//! The audit log: every state-changing action, append-only, each entry
//! chained to the one before by SHA-256 so that editing, deleting or
//! reordering entries is detectable by [`verify`].
//!
//! The digest covers a canonical encoding (length-prefixed fields in a fixed
//! order), not JSON, so it does not depend on how a store serialises rows.
//!
//! A chain alone proves nothing against someone who can write the
//! database: they can edit an entry and hash the rest again, or delete the
//! newest entries. So each entry also carries an HMAC of its hash under a
//! key derived from the master key, which lives outside the database
//! ([`Anchor`]), and each server keeps the newest entry it wrote in a
//! checkpoint file in its data dir (and prints it to its log now and then):
//! re-hashing breaks the MACs, truncation falls short of the checkpoint.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, as the caller describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Who: a user name, or `system`.
    pub actor: String,
    /// What: a dotted verb such as `run.cancel` or `approval.approve`.
    pub action: String,
    /// On what: `run/12`, `repo/churn`, `user/mona`.
    pub target: String,
    /// From where: the client address, or `cli`.
    pub source: String,
    /// How it ended: `ok`, or `denied: …` / `error: …`.
    pub outcome: String,
}

/// The most any audit field holds; longer values are cut (and say so), so
/// no request can make the audit log grow by more than a few KiB.
pub const MAX_FIELD: usize = 512;

impl Event {
    /// This event with every field cut to [`MAX_FIELD`] bytes.
    pub fn bounded(self) -> Event {
        fn cut(s: String) -> String {
            if s.len() <= MAX_FIELD {
                return s;
            }
            let mut end = MAX_FIELD - 3;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}...", &s[..end])
        }
        Event {
            actor: cut(self.actor),
            action: cut(self.action),
            target: cut(self.target),
            source: cut(self.source),
            outcome: cut(self.outcome),
        }
    }
}

/// An event as stored: numbered, timed and chained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    #[serde(flatten)]
    pub event: Event,
    /// The previous entry's hash ([`GENESIS`] for the first).
    pub prev: String,
    pub hash: String,
    /// HMAC-SHA256 of `hash` under the audit key (empty in entries written
    /// before anchoring existed).
    #[serde(default)]
    pub mac: String,
}

/// What anchors the log outside the database.
#[derive(Debug, Clone)]
pub struct Anchor {
    /// [`crate::sealed::MasterKey::audit_key`].
    pub key: [u8; 32],
    /// The checkpoint file (`audit.head` in the data dir).
    pub checkpoint: Option<std::path::PathBuf>,
}

/// The newest entry a server wrote, as its checkpoint file keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: u64,
    pub hash: String,
    /// The first entry this server signed: every entry from it on must be
    /// signed (older ones may predate anchoring).
    pub since: u64,
}

impl Anchor {
    pub fn mac(&self, hash: &str) -> String {
        use hmac::{Hmac, Mac};
        let Ok(mut m) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return String::new();
        };
        m.update(hash.as_bytes());
        crate::hex(&m.finalize().into_bytes())
    }

    fn mac_ok(&self, e: &Entry) -> bool {
        use hmac::{Hmac, Mac};
        let Ok(mut m) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return false;
        };
        m.update(e.hash.as_bytes());
        crate::unhex(&e.mac).is_some_and(|tag| m.verify_slice(&tag).is_ok())
    }

    /// The checkpoint, if there is one.
    pub fn checkpoint(&self) -> Option<Checkpoint> {
        let text = std::fs::read_to_string(self.checkpoint.as_ref()?).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Moves the checkpoint forward to `e` (never back).
    pub fn advance(&self, e: &Entry) {
        let Some(path) = &self.checkpoint else { return };
        let old = self.checkpoint();
        if old.as_ref().is_some_and(|c| c.seq >= e.seq) {
            return;
        }
        let c = Checkpoint {
            seq: e.seq,
            hash: e.hash.clone(),
            since: old.map_or(e.seq, |c| c.since),
        };
        let tmp = path.with_extension("tmp");
        if let Ok(text) = serde_json::to_vec(&c)
            && std::fs::write(&tmp, text).is_ok()
        {
            let _ = std::fs::rename(&tmp, path);
        }
    }
}

/// The entry that follows `last` (or starts the log when `None`).
pub fn append(last: Option<&Entry>, at_ms: i64, event: Event) -> Entry {
    let (seq, prev) = match last {
        Some(e) => (e.seq + 1, e.hash.clone()),
        None => (1, GENESIS.to_string()),
    };
    let hash = digest(seq, at_ms, &event, &prev);
    Entry {
        seq,
        at_ms,
        event,
        prev,
        hash,
        mac: String::new(),
    }
}

fn digest(seq: u64, at_ms: i64, e: &Event, prev: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"launchway-audit-v1");
    h.update(seq.to_be_bytes());
    h.update(at_ms.to_be_bytes());
    for field in [&e.actor, &e.action, &e.target, &e.source, &e.outcome, prev] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    crate::hex(&h.finalize())
}

/// Where the chain breaks.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Tamper {
    #[error("entry {seq}: its contents do not match its hash (edited)")]
    Edited { seq: u64 },
    #[error("entry {seq}: does not follow entry {prev_seq} (deleted or reordered entries)")]
    Broken { seq: u64, prev_seq: u64 },
    #[error("entry {seq}: the log should start at entry 1 with the genesis hash")]
    BadStart { seq: u64 },
    #[error(
        "entry {seq}: its signature does not match (written or re-hashed without the master key)"
    )]
    Unsigned { seq: u64 },
    #[error(
        "the log ends at entry {last}, but this server wrote entry {checkpoint} (entries were deleted)"
    )]
    Truncated { last: u64, checkpoint: u64 },
    #[error("entry {seq} is not the one this server wrote (its hash differs from the checkpoint)")]
    Replaced { seq: u64 },
}

/// Checks a whole log as [`verify`] does, and its anchoring: every entry
/// from the first signed one on carries a valid MAC, and the log reaches
/// the checkpoint with the same entry there.
pub fn verify_anchored(entries: &[Entry], anchor: &Anchor) -> Result<u64, Tamper> {
    let n = verify(entries)?;
    let checkpoint = anchor.checkpoint();
    let since = checkpoint.as_ref().map(|c| c.since);
    let mut signed = false;
    for e in entries {
        signed |= !e.mac.is_empty() || since.is_some_and(|s| e.seq >= s);
        if signed && !anchor.mac_ok(e) {
            return Err(Tamper::Unsigned { seq: e.seq });
        }
    }
    if let Some(c) = checkpoint {
        let last = entries.last().map_or(0, |e| e.seq);
        if last < c.seq {
            return Err(Tamper::Truncated {
                last,
                checkpoint: c.seq,
            });
        }
        if let Some(e) = entries.iter().find(|e| e.seq == c.seq)
            && e.hash != c.hash
        {
            return Err(Tamper::Replaced { seq: c.seq });
        }
    }
    Ok(n)
}

/// Checks a whole log, oldest first; `Ok` carries the number of entries.
pub fn verify<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Result<u64, Tamper> {
    let mut last: Option<&Entry> = None;
    let mut count = 0;
    for e in entries {
        match last {
            None if e.seq != 1 || e.prev != GENESIS => return Err(Tamper::BadStart { seq: e.seq }),
            Some(p) if e.seq != p.seq + 1 || e.prev != p.hash => {
                return Err(Tamper::Broken {
                    seq: e.seq,
                    prev_seq: p.seq,
                });
            }
            _ => {}
        }
        if digest(e.seq, e.at_ms, &e.event, &e.prev) != e.hash {
            return Err(Tamper::Edited { seq: e.seq });
        }
        last = Some(e);
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {

    #[test]
    fn fields_are_bounded() {
        let e = Event {
            actor: "é".repeat(2000),
            action: "a".into(),
            target: "t".repeat(513),
            source: String::new(),
            outcome: "ok".into(),
        }
        .bounded();
        assert!(e.actor.len() <= MAX_FIELD && e.actor.ends_with("..."));
        assert!(e.target.len() <= MAX_FIELD);
        assert_eq!(e.action, "a");
    }

    use super::*;

    fn event(i: usize) -> Event {
        Event {
            actor: format!("user{i}"),
            action: "run.cancel".into(),
            target: format!("run/{i}"),
            source: "127.0.0.1".into(),
            outcome: "ok".into(),
        }
    }

    fn log(n: usize) -> Vec<Entry> {
        let mut out: Vec<Entry> = Vec::new();
        for i in 0..n {
            let e = append(out.last(), 1_700_000_000_000 + i as i64, event(i));
            out.push(e);
        }
        out
    }

    fn anchored(dir: &std::path::Path, n: usize) -> (Anchor, Vec<Entry>) {
        let anchor = Anchor {
            key: [7u8; 32],
            checkpoint: Some(dir.join("audit.head")),
        };
        let mut out: Vec<Entry> = Vec::new();
        for i in 0..n {
            let mut e = append(out.last(), i as i64, event(i));
            e.mac = anchor.mac(&e.hash);
            anchor.advance(&e);
            out.push(e);
        }
        (anchor, out)
    }

    #[test]
    fn rehashing_truncation_and_replacement_are_detected_when_anchored() {
        let tmp = tempfile::tempdir().unwrap();
        let (anchor, entries) = anchored(tmp.path(), 6);
        assert_eq!(verify_anchored(&entries, &anchor), Ok(6));
        // Edit entry 3 and hash everything after it again: the chain holds,
        // the signatures do not.
        let mut forged: Vec<Entry> = entries[..2].to_vec();
        for e in &entries[2..] {
            let mut ev = e.event.clone();
            if e.seq == 3 {
                ev.outcome = "denied".into();
            }
            let mut n = append(forged.last(), e.at_ms, ev);
            n.mac = e.mac.clone();
            forged.push(n);
        }
        assert_eq!(verify(&forged), Ok(6), "the plain chain is fooled");
        assert_eq!(
            verify_anchored(&forged, &anchor),
            Err(Tamper::Unsigned { seq: 3 })
        );
        // Stripping every signature does not help either.
        let stripped: Vec<Entry> = forged
            .iter()
            .map(|e| Entry {
                mac: String::new(),
                ..e.clone()
            })
            .collect();
        assert_eq!(
            verify_anchored(&stripped, &anchor),
            Err(Tamper::Unsigned { seq: 1 })
        );
        // Deleting the newest entries falls short of the checkpoint.
        assert_eq!(
            verify_anchored(&entries[..4], &anchor),
            Err(Tamper::Truncated {
                last: 4,
                checkpoint: 6
            })
        );
    }

    #[test]
    fn entries_from_before_anchoring_may_be_unsigned() {
        let tmp = tempfile::tempdir().unwrap();
        let anchor = Anchor {
            key: [9u8; 32],
            checkpoint: Some(tmp.path().join("audit.head")),
        };
        let mut entries = log(3);
        for i in 3..5 {
            let mut e = append(entries.last(), i as i64, event(i));
            e.mac = anchor.mac(&e.hash);
            anchor.advance(&e);
            entries.push(e);
        }
        assert_eq!(verify_anchored(&entries, &anchor), Ok(5));
        assert_eq!(anchor.checkpoint().unwrap().since, 4);
    }

    #[test]
    fn an_untouched_log_verifies() {
        assert_eq!(verify(&log(0)), Ok(0));
        assert_eq!(verify(&log(5)), Ok(5));
    }

    #[test]
    fn edits_deletions_and_reorders_are_detected() {
        let mut edited = log(5);
        edited[2].event.outcome = "denied".into();
        assert_eq!(verify(&edited), Err(Tamper::Edited { seq: 3 }));

        let mut deleted = log(5);
        deleted.remove(2);
        assert_eq!(
            verify(&deleted),
            Err(Tamper::Broken {
                seq: 4,
                prev_seq: 2
            })
        );

        let mut swapped = log(5);
        swapped.swap(1, 2);
        assert!(matches!(verify(&swapped), Err(Tamper::Broken { .. })));

        let truncated_front = log(5)[1..].to_vec();
        assert_eq!(verify(&truncated_front), Err(Tamper::BadStart { seq: 2 }));
    }

    #[test]
    fn fields_cannot_be_shifted_between_each_other() {
        // "ab"+"c" and "a"+"bc" must hash differently.
        let mut a = event(0);
        let mut b = event(0);
        a.actor = "ab".into();
        a.action = "c".into();
        b.actor = "a".into();
        b.action = "bc".into();
        assert_ne!(append(None, 0, a).hash, append(None, 0, b).hash);
    }

    proptest::proptest! {
        #[test]
        fn any_single_edit_is_detected(n in 1usize..20, pick: usize, text in "\\PC{0,8}") {
            let mut entries = log(n);
            let i = pick % n;
            proptest::prop_assume!(entries[i].event.target != text);
            entries[i].event.target = text;
            proptest::prop_assert_eq!(verify(&entries), Err(Tamper::Edited { seq: i as u64 + 1 }));
        }
    }
}
