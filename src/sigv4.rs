//! AWS Signature Version 4 knowledge the uploader needs (pure).
//!
//! For now: when a presigned URL expires, read from its `X-Amz-Date` and `X-Amz-Expires`, so a
//! URL is signed again before it is sent past its expiry rather than after S3 refuses it.

/// A URL this close to its expiry (or past it) is signed again before it is used: S3 checks
/// expiry when a request starts, so 30 s covers the time between taking a URL and sending it.
pub const EXPIRY_MARGIN_MS: f64 = 30_000.0;

/// When a presigned URL stops being valid, in milliseconds since the Unix epoch; `None` when
/// the URL carries no SigV4 query signature (a backend may use other schemes).
pub fn presigned_expiry_ms(url: &str) -> Option<f64> {
    let query = url.split_once('?')?.1.split('#').next()?;
    let param = |name: &str| query.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='));
    let signed_at = amz_date_ms(param("X-Amz-Date")?)?;
    let lifetime_s: f64 = param("X-Amz-Expires")?.parse().ok()?;
    Some(signed_at + lifetime_s * 1000.0)
}

/// Whether a presigned URL is expired, or will be within [`EXPIRY_MARGIN_MS`], at `now_ms`
/// (Unix epoch milliseconds). URLs without a readable expiry never count as expiring.
pub fn is_expiring(url: &str, now_ms: f64) -> bool {
    presigned_expiry_ms(url).is_some_and(|expiry| now_ms + EXPIRY_MARGIN_MS >= expiry)
}

/// `YYYYMMDDTHHMMSSZ` (SigV4's `X-Amz-Date`) as Unix epoch milliseconds.
fn amz_date_ms(date: &str) -> Option<f64> {
    let b = date.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| date.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (number(0..4)?, number(4..6)?, number(6..8)?);
    let (hour, minute, second) = (number(9..11)?, number(11..13)?, number(13..15)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_since_epoch(year, month, day);
    Some(((days * 86_400 + hour * 3600 + minute * 60 + second) * 1000) as f64)
}

/// Days from 1970-01-01 to a civil date (proleptic Gregorian), after Howard Hinnant's algorithm.
fn days_since_epoch(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://127.0.0.1:9000/b/k?partNumber=1&uploadId=u&X-Amz-Algorithm=AWS4-HMAC-SHA256\
        &X-Amz-Credential=AK%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z\
        &X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

    #[test]
    fn expiry_is_read_from_the_signed_date_and_lifetime() {
        // AWS's presigned-URL example: signed 2013-05-24T00:00:00Z (1369353600 s), valid 1 day.
        assert_eq!(presigned_expiry_ms(URL), Some((1_369_353_600.0 + 86_400.0) * 1000.0));
        assert_eq!(amz_date_ms("19700101T000000Z"), Some(0.0));
        assert_eq!(amz_date_ms("20000301T000001Z"), Some(951_868_801_000.0), "after a leap day");
        assert_eq!(amz_date_ms("20261121T204708Z"), Some(1_795_294_028_000.0));
    }

    #[test]
    fn urls_are_expiring_from_thirty_seconds_before_their_expiry() {
        let expiry = presigned_expiry_ms(URL).unwrap();
        assert!(!is_expiring(URL, expiry - EXPIRY_MARGIN_MS - 1.0));
        assert!(is_expiring(URL, expiry - EXPIRY_MARGIN_MS));
        assert!(is_expiring(URL, expiry + 1.0));
    }

    #[test]
    fn urls_without_a_sigv4_expiry_never_expire() {
        assert_eq!(presigned_expiry_ms("https://store/obj"), None);
        assert_eq!(presigned_expiry_ms("https://store/obj?X-Amz-Date=yesterday&X-Amz-Expires=60"), None);
        assert_eq!(presigned_expiry_ms("https://store/obj?X-Amz-Date=20130524T000000Z"), None);
        assert!(!is_expiring("https://store/obj?sig=abc", f64::MAX));
    }
}
