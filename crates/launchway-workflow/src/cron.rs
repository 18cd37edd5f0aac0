//! POSIX cron as GitHub's `schedule` accepts it: five fields, lists, ranges,
//! steps, month and weekday names.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    dom_star: bool,
    dow_star: bool,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn field(src: &str, name: &str, lo: u32, hi: u32, names: &[&str]) -> Result<u64, String> {
    let value = |s: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(u32::try_from(i).unwrap_or(0) + lo);
        }
        let n: u32 = s
            .parse()
            .map_err(|_| format!("{name}: '{s}' is not a number"))?;
        // Weekday 7 is Sunday, as in most crons.
        let n = if names.len() == 7 && n == 7 { 0 } else { n };
        if n < lo || n > hi {
            return Err(format!("{name}: {n} is outside {lo}-{hi}"));
        }
        Ok(n)
    };
    let mut bits = 0u64;
    for part in src.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let s: u32 = s
                    .parse()
                    .map_err(|_| format!("{name}: step '{s}' is not a number"))?;
                if s == 0 {
                    return Err(format!("{name}: step must be at least 1"));
                }
                (r, s)
            }
            None => (part, 1),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(a)?, value(b)?);
            if a > b {
                return Err(format!("{name}: range {a}-{b} is backwards"));
            }
            (a, b)
        } else {
            let a = value(range)?;
            (a, if step > 1 { hi } else { a })
        };
        let mut v = a;
        while v <= b {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

impl Cron {
    pub fn parse(src: &str) -> Result<Cron, String> {
        let parts: Vec<&str> = src.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), found {}",
                parts.len()
            ));
        }
        Ok(Cron {
            minutes: field(parts[0], "minute", 0, 59, &[])?,
            hours: field(parts[1], "hour", 0, 23, &[])?,
            days: field(parts[2], "day of month", 1, 31, &[])?,
            months: field(parts[3], "month", 1, 12, &MONTHS)?,
            weekdays: field(parts[4], "day of week", 0, 6, &DAYS)?,
            dom_star: parts[2] == "*",
            dow_star: parts[4] == "*",
        })
    }

    /// Whether the schedule fires at this UTC minute. Day-of-month and
    /// day-of-week are OR-ed when both are restricted, as POSIX cron does.
    pub fn matches(&self, minute: u32, hour: u32, day: u32, month: u32, weekday: u32) -> bool {
        let has = |bits: u64, v: u32| v < 64 && bits & (1 << v) != 0;
        let dom = has(self.days, day);
        let dow = has(self.weekdays, weekday);
        let day_ok = match (self.dom_star, self.dow_star) {
            (false, false) => dom || dow,
            _ => dom && dow,
        };
        has(self.minutes, minute) && has(self.hours, hour) && has(self.months, month) && day_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches() {
        let c = Cron::parse("30 5,17 * * 1-5").unwrap();
        assert!(c.matches(30, 5, 10, 3, 1));
        assert!(!c.matches(30, 5, 10, 3, 0));
        let c = Cron::parse("*/15 * * JAN-MAR sun").unwrap();
        assert!(c.matches(45, 0, 1, 2, 0));
        assert!(!c.matches(46, 0, 1, 2, 0));
        assert!(!c.matches(45, 0, 1, 4, 0));
        let c = Cron::parse("0 0 13 * 5").unwrap();
        assert!(c.matches(0, 0, 13, 1, 2), "dom OR dow");
        assert!(c.matches(0, 0, 2, 1, 5));
    }

    #[test]
    fn rejects_bad() {
        for bad in [
            "* * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "*/0 * * * *",
            "5-1 * * * *",
            "a * * * *",
            "* * * FOO *",
        ] {
            assert!(Cron::parse(bad).is_err(), "{bad}");
        }
    }
}
