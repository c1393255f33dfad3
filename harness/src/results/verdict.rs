//! Whether a case that ran to its end succeeded: decided once, after the case returns, from its
//! summary, whichever backend ran it. Saturation is reported beside it and decides nothing.

use super::schema::Summary;

/// Why the case failed, in numbers, or `None` when it is ok: nothing acknowledged at all, or failed
/// sends above `max_error_ratio` of records + errors.
pub fn failure(summary: &Summary, max_error_ratio: f64) -> Option<String> {
    let attempts = summary.records + summary.errors;
    let by_name = kafka_errors(summary);
    if summary.records == 0 {
        return Some(if summary.errors > 0 {
            format!(
                "{} of {} sends failed (100%, records.max_error_ratio {max_error_ratio}): nothing was acknowledged{by_name}",
                grouped(summary.errors),
                grouped(attempts)
            )
        } else {
            format!(
                "nothing was acknowledged in the measured phase (0 records, 0 errors counted, {:.0} sends/s issued){by_name}",
                summary.achieved_rate
            )
        });
    }
    let ratio = summary.errors as f64 / attempts as f64;
    (ratio > max_error_ratio).then(|| {
        format!(
            "{} of {} sends failed ({}%, records.max_error_ratio {max_error_ratio}){by_name}",
            grouped(summary.errors),
            grouped(attempts),
            percent(ratio)
        )
    })
}

/// `: NotEnoughReplicas 41,000, MessageTimedOut 12` from librdkafka's error maps, when present.
fn kafka_errors(summary: &Summary) -> String {
    let Some(k) = &summary.kafka else { return String::new() };
    let mut all: Vec<(&String, u64)> = Vec::new();
    for (name, n) in k.send_errors.iter().chain(&k.delivery_errors) {
        match all.iter_mut().find(|(m, _)| *m == name) {
            Some((_, total)) => *total += n,
            None => all.push((name, *n)),
        }
    }
    all.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    if all.is_empty() {
        return String::new();
    }
    let list: Vec<String> = all.iter().take(3).map(|(name, n)| format!("{name} {}", grouped(*n))).collect();
    format!(": {}", list.join(", "))
}

/// One decimal, but never rounded up to 100 or down to 0 when it is not.
fn percent(ratio: f64) -> String {
    let p = ratio * 100.0;
    let shown = (p * 10.0).round() / 10.0;
    if shown >= 100.0 && ratio < 1.0 {
        "99.9".into()
    } else if shown <= 0.0 && ratio > 0.0 {
        "0.1".into()
    } else {
        format!("{shown:.1}")
    }
}

/// `41300` as `41,300`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(records: u64, errors: u64) -> Summary {
        Summary { records, errors, ..Summary::default() }
    }

    #[test]
    fn mostly_failed_sends_fail_the_case_in_numbers() {
        assert_eq!(
            failure(&summary(88, 41_212), 0.01).as_deref(),
            Some("41,212 of 41,300 sends failed (99.8%, records.max_error_ratio 0.01)")
        );
        assert!(failure(&summary(0, 5), 0.01).unwrap().contains("nothing was acknowledged"));
        assert!(failure(&summary(0, 0), 0.01).unwrap().contains("nothing was acknowledged"));
    }

    #[test]
    fn errors_within_the_ratio_leave_the_case_ok() {
        assert_eq!(failure(&summary(1000, 10), 0.01), None, "10 of 1010 is below 1%");
        assert!(failure(&summary(1000, 11), 0.01).is_some(), "11 of 1011 is above 1%");
        assert_eq!(failure(&summary(10, 0), 0.0), None);
        assert!(failure(&summary(10, 1), 0.0).is_some(), "ratio 0 tolerates no error");
        assert_eq!(failure(&summary(1, 1_000_000), 1.0), None, "ratio 1 tolerates every error but no silence");
    }

    #[test]
    fn librdkafka_error_names_are_given() {
        let mut s = summary(0, 30);
        let mut k = super::super::schema::KafkaSummary::default();
        k.delivery_errors.insert("NotEnoughReplicas".into(), 20);
        k.send_errors.insert("QueueFull".into(), 10);
        s.kafka = Some(k);
        let m = failure(&s, 0.01).unwrap();
        assert!(m.ends_with(": NotEnoughReplicas 20, QueueFull 10"), "{m}");
    }
}
