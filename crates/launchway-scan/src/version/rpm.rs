//! RPM version ordering as `rpmvercmp` implements it, on
//! `[epoch:]version[-release]`: segments of digits compare as numbers,
//! of letters as strings, digits beat letters, `~` sorts before everything
//! (even the end) and `^` after the end but before anything else.

use std::cmp::Ordering;

/// `rpmvercmp` on one part (version or release).
fn vercmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    loop {
        // Separators (anything but alphanumerics, `~`, `^`) are skipped.
        while i < a.len() && !(a[i].is_ascii_alphanumeric() || a[i] == b'~' || a[i] == b'^') {
            i += 1;
        }
        while j < b.len() && !(b[j].is_ascii_alphanumeric() || b[j] == b'~' || b[j] == b'^') {
            j += 1;
        }
        let (ta, tb) = (a.get(i).copied(), b.get(j).copied());
        if ta == Some(b'~') || tb == Some(b'~') {
            match (ta == Some(b'~'), tb == Some(b'~')) {
                (true, true) => {
                    i += 1;
                    j += 1;
                    continue;
                }
                (true, false) => return Ordering::Less,
                _ => return Ordering::Greater,
            }
        }
        if ta == Some(b'^') || tb == Some(b'^') {
            match (ta, tb) {
                (None, _) => return Ordering::Less,
                (_, None) => return Ordering::Greater,
                (Some(b'^'), Some(b'^')) => {
                    i += 1;
                    j += 1;
                    continue;
                }
                (Some(b'^'), _) => return Ordering::Less,
                _ => return Ordering::Greater,
            }
        }
        let (Some(ca), Some(_)) = (ta, tb) else {
            return (a.len() - i).cmp(&(b.len() - j));
        };
        let digits = ca.is_ascii_digit();
        let take = |s: &[u8], k: &mut usize| {
            let start = *k;
            while *k < s.len()
                && (if digits {
                    s[*k].is_ascii_digit()
                } else {
                    s[*k].is_ascii_alphabetic()
                })
            {
                *k += 1;
            }
            start
        };
        let sa = take(a, &mut i);
        let sb = take(b, &mut j);
        let (pa, pb) = (&a[sa..i], &b[sb..j]);
        if pb.is_empty() {
            // Different kinds: a number is newer than letters.
            return if digits {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let o = if digits {
            let (pa, pb) = (trim_zeros(pa), trim_zeros(pb));
            pa.len().cmp(&pb.len()).then_with(|| pa.cmp(pb))
        } else {
            pa.cmp(pb)
        };
        if o != Ordering::Equal {
            return o;
        }
    }
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|c| **c == b'0').count();
    &s[n..]
}

/// Compares `[epoch:]version[-release]` strings.
pub fn compare(a: &str, b: &str) -> Ordering {
    let split = |s: &str| -> (u64, String, String) {
        let (epoch, rest) = match s.split_once(':') {
            Some((e, r)) if e.bytes().all(|c| c.is_ascii_digit()) => (e.parse().unwrap_or(0), r),
            _ => (0, s),
        };
        match rest.rsplit_once('-') {
            Some((v, r)) => (epoch, v.to_string(), r.to_string()),
            None => (epoch, rest.to_string(), String::new()),
        }
    };
    let (ea, va, ra) = split(a);
    let (eb, vb, rb) = split(b);
    ea.cmp(&eb).then_with(|| vercmp(&va, &vb)).then_with(|| {
        if ra.is_empty() || rb.is_empty() {
            Ordering::Equal
        } else {
            vercmp(&ra, &rb)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpmvercmp_cases() {
        // From rpm's own test suite (rpmvercmp.at).
        for (a, b, want) in [
            ("1.0", "1.0", Ordering::Equal),
            ("1.0", "2.0", Ordering::Less),
            ("2.0.1", "2.0", Ordering::Greater),
            ("2.0.1a", "2.0.1", Ordering::Greater),
            ("5.5p1", "5.5p2", Ordering::Less),
            ("5.6p1", "5.5p1", Ordering::Greater),
            ("10xyz", "10.1xyz", Ordering::Less),
            ("xyz10", "xyz10.1", Ordering::Less),
            ("1.0aa", "1.0a", Ordering::Greater),
            ("1.0a", "1.0.0", Ordering::Less),
            ("10a2", "10b2", Ordering::Less),
            ("1.0~rc1", "1.0", Ordering::Less),
            ("1.0~rc1", "1.0~rc2", Ordering::Less),
            ("1.0^", "1.0", Ordering::Greater),
            ("1.0^git1", "1.01", Ordering::Less),
            ("1.0^git1~pre", "1.0^git1", Ordering::Less),
            ("1:1.0-1", "2.0-1", Ordering::Greater),
            ("3.0.7-24.el9", "3.0.7-27.el9", Ordering::Less),
            ("001", "1", Ordering::Equal),
        ] {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }
}
